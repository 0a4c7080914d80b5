from celery import shared_task

from billing import services


@shared_task(
    name="billing.record_usage",
    ignore_result=True,
    autoretry_for=(ConnectionError, OSError),
    retry_backoff=True,
    max_retries=10,
)
def record_usage(
    *, organization_id: int, request_id: str, cost_nanos: int, description: str
) -> bool:
    """Idempotent: a redelivered task finds the request id already booked."""
    return services.usage_record(
        organization_id=organization_id,
        request_id=request_id,
        cost_nanos=cost_nanos,
        description=description,
    )
