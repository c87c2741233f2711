"""`[health]`: how a run's prediction figures are judged against the model's own history.

A model's band for one figure is `[min, max]` of that figure over its last `rounds`
submitted rounds (its own predictions: rounds it submitted a fallback for are left out);
no run is judged before `min_rounds` such rounds exist. A figure is out of band, and the
run suspect, when it is below `min - margin` or above `max + margin`, with the margin of
its kind:

- `corr_margin`: correlations (with each benchmark model, the example predictions) and
  feature exposure, in correlation units (0.1: a correlation of 0.62..0.70 allows 0.52..0.80);
- `stat_margin`: mean, standard deviation and quantiles, in prediction units (predictions
  lie in [0, 1]);
- `count_margin`: rows and ticker coverage, as a fraction of the band's bounds (0.1: a band
  of 6,600..6,800 rows allows 5,940..7,480).

    [health]
    rounds = 10
    corr_margin = 0.1
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# What a suspect run does (`models.NAME.on_suspect`): submit and alert, submit the model's
# fallback instead, or wait for a person's approval on the dashboard until the round closes.
OnSuspect = Literal["warn", "fallback", "hold"]


class HealthSettings(BaseModel):
    """`[health]`: the band and its margins; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rounds: int = Field(default=10, ge=1)
    min_rounds: int = Field(default=3, ge=1)
    corr_margin: float = Field(default=0.1, ge=0)
    stat_margin: float = Field(default=0.05, ge=0)
    count_margin: float = Field(default=0.1, ge=0)

    @model_validator(mode="after")
    def _enough_rounds(self) -> HealthSettings:
        if self.min_rounds > self.rounds:
            raise ValueError(f"min_rounds ({self.min_rounds}) is above rounds ({self.rounds}): "
                             "the band would never be complete; lower min_rounds or raise rounds")
        return self
