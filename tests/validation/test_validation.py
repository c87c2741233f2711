"""validate_predictions: every message says what is wrong, how many rows, and the fix."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from numerai_autopilot.errors import ValidationError
from numerai_autopilot.validation import to_csv_bytes, validate_predictions

N = 6720
IDS = pd.Index([f"n{i:015x}" for i in range(N)], name="id")


def preds(values: object = None, index: pd.Index = IDS) -> pd.DataFrame:
    if values is None:
        values = np.linspace(0.01, 0.99, len(index))
    return pd.DataFrame({"prediction": values}, index=index)


def fails(frame: pd.DataFrame | pd.Series, message: str, live: pd.Index = IDS) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_predictions(frame, live, "alpha")  # type: ignore[arg-type,unused-ignore]


def test_valid_predictions_become_the_submission_frame() -> None:
    shuffled = preds().sample(frac=1.0, random_state=1)
    frame = validate_predictions(shuffled, IDS, "alpha")
    assert list(frame.columns) == ["id", "prediction"]
    assert frame["id"].tolist() == IDS.tolist()  # live order
    assert frame["prediction"].tolist() == preds()["prediction"].tolist()
    body = to_csv_bytes(frame)
    assert body.startswith(b"id,prediction\nn000000000000000,0.01\n")
    assert body.count(b"\n") == N + 1


def test_an_id_column_is_accepted() -> None:
    frame = validate_predictions(preds().reset_index(), IDS, "alpha")
    assert len(frame) == N


def test_inclusive_bounds_are_valid() -> None:
    values = np.linspace(0.0, 1.0, N)
    assert validate_predictions(preds(values), IDS, "alpha")["prediction"].max() == 1.0


def test_fewer_rows() -> None:
    fails(preds().iloc[312:], r"^model 'alpha': predictor returned 312 fewer rows than the "
                              r"live data \(6,720\); return one prediction per live id$")


def test_nan() -> None:
    values = np.linspace(0.01, 0.99, N)
    values[:17] = np.nan
    fails(preds(values), r"^model 'alpha': 17 predictions are NaN; fill them")


def test_out_of_range() -> None:
    values = np.linspace(0.01, 0.99, N)
    values[0], values[1], values[2] = -0.2, 1.4, 1.1
    fails(preds(values), r"^model 'alpha': 3 values outside \[0, 1\] \(min -0.2, max 1.4\); "
                         r"rank or clip them")


def test_constant() -> None:
    fails(preds(np.full(N, 0.5)), r"^model 'alpha': all 6,720 predictions are the same value "
                                  r"0.5;")


def test_duplicates() -> None:
    frame = pd.concat([preds(), preds().iloc[:12]])
    fails(frame, r"^model 'alpha': 12 duplicate ids \(e.g. 'n000000000000000', "
                 r"'n000000000000001', 'n000000000000002'\); return one prediction per live id")


def test_ids_not_in_live() -> None:
    index = IDS[:-40].append(pd.Index([f"x{i}" for i in range(40)], name="id"))
    fails(preds(index=index), r"^model 'alpha': 40 ids not in the live data \(e.g. 'x0'")


def test_non_numeric_predictions() -> None:
    fails(preds(["high"] * N), r"^model 'alpha': predictions have dtype .*; they must be "
                               r"numbers in \[0, 1\]")
    fails(preds([True, False] * (N // 2)), "predictions have dtype bool")


def test_wrong_index_type() -> None:
    fails(preds().reset_index(drop=True), r"^model 'alpha': predictions are indexed by "
                                          r"RangeIndex of int64 values, not live ids")


def test_huge_frame() -> None:
    index = pd.Index([f"n{i:015x}" for i in range(N * 10)], name="id")
    fails(preds(index=index), r"^model 'alpha': predictor returned 67,200 rows for 6,720 "
                              r"live ids; predict on this round's live features only")


def test_missing_prediction_column_and_extra_columns() -> None:
    fails(pd.DataFrame({"score": [0.5]}, index=IDS[:1]),
          r"have columns \['score'\]; a 'prediction' column is required")
    fails(preds().assign(era="X"), r"extra columns \['era'\]; a submission has only")


def test_not_a_frame() -> None:
    fails(preds()["prediction"], "predictions are a Series, not a DataFrame")


def test_nan_ids() -> None:
    index = pd.Index([None, *IDS[1:]], dtype=object, name="id")
    fails(preds(index=index), r"^model 'alpha': 1 rows have no id \(NaN\)")


def test_other_tournaments_are_an_explicit_extension_point() -> None:
    with pytest.raises(ValidationError, match="tournament 99 is not supported yet"):
        validate_predictions(preds(), IDS, "alpha", tournament=99)


def test_numerai_tools_has_the_last_word() -> None:
    # a near-constant submission passes our checks but not numerai-tools' std check
    values = np.full(N, 0.5)
    values[0] = 0.5 + 1e-12
    fails(preds(values), "numerai-tools rejected the submission: invalid_submission_values")


def test_the_csv_gives_back_every_value_exactly() -> None:
    values = np.random.default_rng(7).random(N)
    values[:3] = [0.0, 1.0, 1e-7]
    frame = validate_predictions(preds(values), IDS, "alpha")
    back = pd.read_csv(io.BytesIO(to_csv_bytes(frame)), dtype={"id": str})
    assert back["id"].tolist() == IDS.tolist()
    assert (back["prediction"].to_numpy() == frame["prediction"].to_numpy()).all()


def test_keys_that_need_quotes_are_quoted() -> None:
    frame = pd.DataFrame({"numerai_ticker": ["AAPL US", 'ODD, "CO"'], "signal": [0.25, 0.5]})
    assert to_csv_bytes(frame) == b'numerai_ticker,signal\nAAPL US,0.25\n"ODD, ""CO""",0.5\n'
