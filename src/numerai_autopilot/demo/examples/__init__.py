"""Example predictors shipped with the package (used by `autopilot init` and the demo).

`EXAMPLE_MODEL` is the model name in `autopilot init`'s autopilot.toml: `autopilot doctor`
recognises it and asks for the user's own model's name instead.
"""

EXAMPLE_MODEL = "my_model"
