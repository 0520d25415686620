"""The model names exactly the routes, tasks, queues, commands and stores the code has; adding
one on either side alone fails with its name."""

import types

import pytest
from django.core.management import get_commands
from django.db import models
from django.test.utils import isolate_apps
from django.urls import include, path

from threatmodel import inventory, surface
from threatmodel.consistency import surface_problems
from threatmodel.model import build
from utility.celery import app as celery_app


@pytest.fixture(scope="module")
def model():
    return build()


@pytest.fixture
def code():
    return inventory.collect()


def test_the_model_names_exactly_what_the_code_has(model, code):
    problems = surface_problems(code, model)
    assert not problems, "\n".join(problems)


def test_a_route_added_without_the_model_fails_naming_it(model, code):
    urlconf = types.ModuleType("urls_with_an_export")
    urlconf.urlpatterns = [
        path("", include("utility.urls")),
        path("portal/everything.csv", lambda request: None, name="export_everything"),
    ]
    code["URL route"] = inventory.routes([urlconf, "utility.urls_ingest"])

    assert surface_problems(code, model) == [
        "URL routes in the code but not in the model (add to threatmodel/surface.py): "
        "export_everything"
    ]


def test_a_celery_task_added_without_the_model_fails_naming_it(model, code):
    @celery_app.task(name="readings.mail_everything")
    def mail_everything():
        pass

    try:
        code["Celery task"] = inventory.tasks()
    finally:
        del celery_app.tasks["readings.mail_everything"]

    assert surface_problems(code, model) == [
        "Celery tasks in the code but not in the model (add to threatmodel/surface.py): "
        "readings.mail_everything"
    ]


def test_a_queue_added_without_the_model_fails_naming_it(model, code, settings):
    settings.CELERY_TASK_ROUTES = {
        **settings.CELERY_TASK_ROUTES,
        "exports.*": {"queue": "exports"},
    }
    code["Celery queue"] = inventory.queues(settings)

    assert surface_problems(code, model) == [
        "Celery queues in the code but not in the model (add to threatmodel/surface.py): exports"
    ]


def test_a_management_command_added_without_the_model_fails_naming_it(model, code):
    code["management command"] = inventory.commands(
        {**get_commands(), "dump_readings": "readings", "dumpdata": "django.core"}
    )

    assert surface_problems(code, model) == [
        "management commands in the code but not in the model "
        "(add to threatmodel/surface.py): dump_readings"
    ]


@isolate_apps("readings")
def test_a_store_added_without_the_model_fails_naming_it(model, code):
    class ReadingCopy(models.Model):
        wh = models.BigIntegerField()

        class Meta:
            app_label = "readings"

        def __str__(self) -> str:
            return str(self.wh)

    code["store"] = inventory.stores([*inventory.django_apps.get_models(), ReadingCopy])

    assert surface_problems(code, model) == [
        "stores in the code but not in the model (add to threatmodel/surface.py): "
        "readings.ReadingCopy"
    ]


def test_a_name_the_code_no_longer_has_fails_naming_it(model, code):
    code["URL route"].discard("smsgateway:delivery_report")
    code["Celery task"].discard("audit.verify_chain")

    assert surface_problems(code, model) == [
        "URL routes in the model but not in the code (remove from threatmodel/surface.py): "
        "smsgateway:delivery_report",
        "Celery tasks in the model but not in the code (remove from threatmodel/surface.py): "
        "audit.verify_chain",
    ]


def test_every_named_thing_maps_to_an_element_of_the_model(model, code, monkeypatch):
    monkeypatch.setitem(surface.QUEUES, "sms", "SMS worker")

    assert surface_problems(code, model) == [
        "Celery queues mapped to no element of threatmodel/model.py: sms -> SMS worker"
    ]
