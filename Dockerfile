# syntax=docker/dockerfile:1
# hookd as a sidecar container: non-root, the database on a volume, a HEALTHCHECK on /readyz.
#
#   docker build -t hookd .
#   docker run -d --name hookd -v hookd-data:/var/lib/hookd \
#     -v ./hookd.yaml:/etc/hookd/hookd.yaml:ro -e HOOKD_INGEST_TOKEN=... hookd
#
# The config comes from $HOOKD_CONFIG (/etc/hookd/hookd.yaml). The image ships a default one:
# 127.0.0.1:8080 (enough for a Kubernetes pod, whose containers share the loopback), the
# database at /var/lib/hookd/hookd.db, no endpoints. Mount your own over it. To be reached
# from other containers, listen on 0.0.0.0:8080 and set auth tokens (hookd refuses otherwise).
# Give `docker stop` / Kubernetes more time than shutdown_timeout (30s by default) so that
# in-flight attempts can finish: docker stop -t 45, terminationGracePeriodSeconds: 45.
# See docs/deployment.md.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY hookd ./hookd
RUN pip install --no-cache-dir --upgrade pip \
 && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOOKD_CONFIG=/etc/hookd/hookd.yaml \
    HOOKD_HEALTH_URL=http://127.0.0.1:8080/readyz
RUN groupadd --system --gid 10001 hookd \
 && useradd --system --uid 10001 --gid hookd --home-dir /var/lib/hookd \
      --shell /usr/sbin/nologin hookd \
 && install -d -o hookd -g hookd -m 0700 /var/lib/hookd \
 && install -d -m 0755 /etc/hookd /usr/share/hookd
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY config.example.yaml /usr/share/hookd/config.example.yaml
COPY plugins /usr/share/hookd/plugins
RUN printf '%s\n' \
      '# The default sidecar config: replace it by mounting /etc/hookd/hookd.yaml.' \
      'listen: 127.0.0.1:8080' \
      'storage: {path: /var/lib/hookd/hookd.db}' \
      > /etc/hookd/hookd.yaml \
 && hookd check -c /etc/hookd/hookd.yaml

USER 10001:10001
WORKDIR /var/lib/hookd
VOLUME ["/var/lib/hookd"]
EXPOSE 8080
STOPSIGNAL SIGTERM
# /readyz is 200 while the database is writable and hookd is not draining. curl is not in the
# slim image; Python's urllib is (an HTTP error status raises, so the exit code is non-zero).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['HOOKD_HEALTH_URL'], timeout=2)"]

ENTRYPOINT ["hookd"]
CMD ["run"]
