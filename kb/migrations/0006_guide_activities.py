from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('kb', '0005_section_entities_and_embeddings'),
    ]

    operations = [
        migrations.AddField(
            model_name='guide',
            name='activities',
            field=models.JSONField(blank=True, default=list, help_text='The guide\'s own "What were you doing?" choices from guide.toml: [{key, label, words}].'),
        ),
    ]
