from django.db import migrations


def add_schedule(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    # django-q2 schedules run at most once a minute: this is the safety net that re-queues
    # any clip whose next step was lost, not the tracker itself (that polls every few seconds).
    Schedule.objects.update_or_create(
        name="clipchain-resume-stalled",
        defaults={
            "func": "videos.tasks.resume_stalled",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
        },
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name="clipchain-resume-stalled").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("videos", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
