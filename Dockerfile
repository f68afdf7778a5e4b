# The Sauron agent, one per UPF node (deploy/open5gs/compose.yaml and
# deploy/k8s/). bcc compiles the programs when the agent starts, against the
# host's kernel headers: mount the host's /lib/modules and /usr/src
# read-only, and bpffs and tracefs (docs/deployment.md).
#
# The base images are named by tag; `make pin-images` pins them by digest
# (tag@sha256:...) from a machine that reaches the registry.

# the dashboard's front-end libraries, pinned in web/package-lock.json
FROM node:22-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-bpfcc libbpf1 iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/sauron
COPY pyproject.toml README.md requirements.lock ./
COPY sauron sauron
# a link into the package's catalogs: configurations name /opt/sauron/slices/
COPY slices slices
COPY --from=web /web/node_modules/uplot/dist/uPlot.iife.min.js /web/node_modules/uplot/dist/uPlot.min.css sauron/service/dashboard/static/vendor/
COPY --from=web /web/node_modules/uplot/LICENSE sauron/service/dashboard/static/vendor/uPlot.LICENSE
# Debian's Python, so that Debian's bcc fits it; only bcc is made visible.
# Its dependencies at the versions and hashes of requirements.lock (make
# lock), then the package, not in place: the C, the catalog and the power
# profiles travel in it as package data.
RUN python3 -m venv /opt/venv \
 && mkdir /opt/venv/debian-bcc \
 && ln -s /usr/lib/python3/dist-packages/bcc /opt/venv/debian-bcc/bcc \
 && echo /opt/venv/debian-bcc > "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/debian-bcc.pth" \
 && /opt/venv/bin/pip install --no-cache-dir --require-hashes -r requirements.lock \
 && /opt/venv/bin/pip install --no-cache-dir --no-deps . \
 && /opt/venv/bin/python -c 'import bcc, sauron'
ENV PATH=/opt/venv/bin:$PATH
EXPOSE 8080
ENTRYPOINT ["sauron"]
CMD ["run", "--config", "/etc/sauron/agent.yaml"]
