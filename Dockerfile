# warpagent: a small image running the scheduler daemon as a non-root user.
#
# nmap's SYN and UDP scans need raw sockets. They are given to the nmap binary alone (file
# capabilities) rather than running as root; the container must be allowed to hold them:
#   docker run -d --cap-add NET_RAW --cap-add NET_ADMIN \
#     -v /srv/warpagent/config:/etc/warpagent:ro -v /srv/warpagent/data:/var/lib/warpagent \
#     -e WARPAGENT_PSEUDONYM_KEY -e NW_WARP_PASSWORD warpagent
# Without those capabilities warpagent falls back to TCP connect scans and skips UDP (logged).
# One-off commands: docker run --rm ... warpagent scan | report board --out /var/lib/warpagent/board.html
# The same image runs a scan worker (CMD: worker --concurrency 4; same capabilities) or a WARP hub
# (CMD: hub serve, with hub.host 0.0.0.0; no capabilities needed: drop --cap-add, publish the port).
FROM debian:12.11-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nmap libcap2-bin python3 python3-venv ca-certificates distro-info-data debian-security-support restic \
 && setcap cap_net_raw,cap_net_admin,cap_net_bind_service+eip /usr/bin/nmap \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/warpagent
COPY pyproject.toml setup.cfg README.md ./
COPY warpagent ./warpagent
COPY checks ./checks
COPY feeds ./feeds
COPY reports ./reports
RUN python3 -m venv /opt/warpagent/venv \
 && /opt/warpagent/venv/bin/pip install --no-cache-dir . \
 && useradd --system --home-dir /var/lib/warpagent --create-home warpagent \
 && chmod 0700 /var/lib/warpagent

USER warpagent
ENV WARPAGENT_CONFIG=/etc/warpagent/warpagent.yaml \
    NMAP_PRIVILEGED=1 \
    PATH=/opt/warpagent/venv/bin:$PATH
VOLUME ["/etc/warpagent", "/var/lib/warpagent"]
WORKDIR /var/lib/warpagent
# healthy while the daemon holds its store's lock
HEALTHCHECK --interval=5m --timeout=30s CMD ["sh", "-c", "warpagent jobs --json | grep -q '\"running\": true'"]
# UMask 0077: the store, reports, outbox and mail queue name hosts, people and weaknesses, so they
# are the owner's alone (warpagent sets it too; this covers anything else the container writes)
ENTRYPOINT ["/bin/sh", "-c", "umask 0077 && exec warpagent \"$@\"", "warpagent"]
CMD ["run"]
