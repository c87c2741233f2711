"""The HTTP server: Numerai's webhook, `/healthz`, `/metrics`, the JSON API and the dashboard.

    from numerai_autopilot.web import create_app
    uvicorn.run(create_app(config), host="127.0.0.1", port=8000)

`app` builds the FastAPI app, `webhook` is `POST /pred/{model_id}/{token}` (its body read
by `payload`), `api` what programs read, `auth` who may read it, `state` the runtime the
routes share, `dashboard/` the pages.
"""

from numerai_autopilot.web.app import create_app
from numerai_autopilot.web.payload import PayloadError, WebhookBody, WebhookPayload, parse_payload

__all__ = ["PayloadError", "WebhookBody", "WebhookPayload", "create_app", "parse_payload"]
