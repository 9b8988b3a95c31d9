"""``failed_verifies`` becomes ``verify_slots_used`` in Python; the column keeps its name, so no SQL runs."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("otp", "0005_phonestate_send_held_until")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameField("otpattempt", "failed_verifies", "verify_slots_used"),
                migrations.AlterField(
                    model_name="otpattempt",
                    name="verify_slots_used",
                    field=models.PositiveIntegerField(
                        db_column="failed_verifies",
                        default=0,
                        help_text=(
                            "Verify attempts counted against this code: each takes one before the provider is "
                            "asked, and a right PIN gives its one back."
                        ),
                        verbose_name="verify attempts used",
                    ),
                ),
            ],
            database_operations=[],
        )
    ]
