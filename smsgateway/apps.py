from django.apps import AppConfig


class SmsGatewayConfig(AppConfig):
    name = "smsgateway"
    verbose_name = "SMS gateway"
