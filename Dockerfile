# One image for web, worker and beat; docker-compose.yml and deploy/k8s choose the command.
FROM python:3.13-slim-trixie

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# A numeric user, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
RUN groupadd --system --gid 10001 nexeon \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /app nexeon

COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

COPY . .
# Production settings (DEBUG=0), so that the manifest of hashed names is written; this key
# signs nothing and is never used at runtime.
RUN DEBUG=0 SECRET_KEY=collectstatic-build-only DATA_DIR=/tmp python manage.py collectstatic --noinput -v0
USER 10001:10001

EXPOSE 8000
CMD ["uvicorn", "nexeon.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--workers", "4", "--loop", "uvloop", "--http", "apigateway.server:GatewayHttpProtocol", "--no-access-log", \
     "--lifespan", "on", "--timeout-graceful-shutdown", "30", "--proxy-headers"]
