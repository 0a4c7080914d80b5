# One image for web, worker and beat; docker-compose.yml chooses the command.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

COPY . .
RUN DEBUG=1 SECRET_KEY=build-only DATA_DIR=/tmp python manage.py collectstatic --noinput -v0 \
    && useradd --system --uid 10001 nexeon
USER nexeon

EXPOSE 8000
CMD ["uvicorn", "nexeon.asgi:application", "--host", "0.0.0.0", "--port", "8000", \
     "--workers", "4", "--loop", "uvloop", "--http", "apigateway.server:GatewayHttpProtocol", "--no-access-log", \
     "--lifespan", "on", "--timeout-graceful-shutdown", "30", "--proxy-headers"]
