"""The slice SLA dashboard: a page the agent serves at `/`, drawn in the
browser from the REST API and the live stream. Everything it loads comes
from the agent (its front-end libraries are installed from the npm
registry by scripts/setup-host into static/vendor/)."""
