from django.apps import AppConfig


class ApiGatewayConfig(AppConfig):
    name = "apigateway"
    verbose_name = "API gateway"
