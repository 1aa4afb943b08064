from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('kb', '0007_case_conversation'),
    ]

    operations = [
        migrations.AddField(
            model_name='feedback',
            name='voter',
            field=models.CharField(blank=True, help_text='Who voted, as a keyed hash of their address (never the address).', max_length=32),
        ),
    ]
