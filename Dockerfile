# numerai-autopilot: one container that answers Numerai's webhooks for all your models.
#
# Your files go in the build folder next to this Dockerfile and are copied in below:
#   autopilot.toml   the configuration (no keys in it: they come from the environment)
#   predictors/      your predictor code (`predictors/alpha.py:predict`)
#   models/          trained models and Model Upload pickles (may be empty)
#
#   docker build -t autopilot .
#   docker run -p 8080:8080 -e PORT=8080 -e NUMERAI_PUBLIC_ID -e NUMERAI_SECRET_KEY \
#       -e AUTOPILOT_SECRET -e AUTOPILOT_ADMIN_TOKEN autopilot
#
# `autopilot deploy cloudrun` builds this file with Cloud Build (no local Docker needed).

FROM python:3.11-slim

# libgomp1: OpenMP for LightGBM. No compilers: every dependency ships a wheel.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 autopilot
WORKDIR /app

# The dependency layer: rebuilt only when pyproject.toml or constraints.txt change.
# A stub package lets pip resolve and install the dependencies with the exact pins.
# `--build-arg EXTRAS=[gcp]` adds google-cloud-secret-manager for sm:// values in the config
# (not needed on Cloud Run, where `--set-secrets` hands the secrets in as env vars).
ARG EXTRAS=""
COPY pyproject.toml constraints.txt README.md /app/
RUN mkdir -p src/numerai_autopilot \
    && touch src/numerai_autopilot/__init__.py \
    && pip install -c constraints.txt ".${EXTRAS}" \
    && pip uninstall -y numerai-autopilot \
    && rm -rf src build

# The package itself (small; changes often).
COPY src/ /app/src/
RUN pip install --no-deps -c constraints.txt . && rm -rf build

# Your models: the config and the folders its predictor paths point into.
COPY --chown=autopilot:autopilot autopilot.toml /app/autopilot.toml
COPY --chown=autopilot:autopilot predictors/ /app/predictors/
COPY --chown=autopilot:autopilot models/ /app/models/
RUN mkdir -p /app/.autopilot && chown autopilot:autopilot /app/.autopilot

USER autopilot
ENV AUTOPILOT_CONFIG=/app/autopilot.toml \
    PORT=8080
EXPOSE 8080

# `serve` listens on $PORT (Cloud Run sets it). Cloud Run adds `--log-format json`.
ENTRYPOINT ["autopilot"]
CMD ["serve", "--host", "0.0.0.0"]
