"""Django's ORM (over psycopg 3) against a running Bulwark: `migrate` of the contrib apps
from nothing (CREATE TABLE with identity columns, DEFERRABLE INITIALLY DEFERRED foreign
keys, `varchar_pattern_ops` indexes, ALTER COLUMN ... TYPE, DROP COLUMN ... CASCADE, bulk
inserts through multi-array UNNEST), then the ORM: users with hashed passwords, bulk_create,
many-to-many sets, an annotate that groups by the primary key, select_related, nested
atomic blocks, an IntegrityError, a delete that cascades, `flush`, and migrating an app back
to zero. Exits non-zero on any mismatch. Usage: python3 django_client.py PORT [USER]"""

import sys

import django
from django.conf import settings

port = sys.argv[1]
user = sys.argv[2] if len(sys.argv) > 2 else "bulwark"

settings.configure(
    DATABASES={
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": user,
            "USER": user,
            "HOST": "127.0.0.1",
            "PORT": port,
        }
    },
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "django.contrib.admin",
        "django.contrib.sessions",
        "django.contrib.messages",
    ],
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
)
django.setup()

from django.contrib.admin.models import ADDITION, LogEntry  # noqa: E402
from django.contrib.auth.models import Group, Permission, User  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import IntegrityError, connection, transaction  # noqa: E402
from django.db.models import Count, Max, Q  # noqa: E402

call_command("migrate", verbosity=0)
tables = set(connection.introspection.table_names())
assert {"auth_user", "auth_group", "django_admin_log", "django_session"} <= tables, tables

alice = User.objects.create_user("alice", "alice@example.com", "pw-123456")
assert User.objects.get(username="alice").check_password("pw-123456")
User.objects.bulk_create([User(username=f"u{i}", email=f"u{i}@x.org") for i in range(5)])
staff = Group.objects.create(name="staff")
staff.permissions.set(Permission.objects.filter(codename__startswith="add_").order_by("id")[:3])
alice.groups.add(staff)
assert list(alice.groups.values_list("name", flat=True)) == ["staff"]
assert len(alice.get_all_permissions()) == 3, alice.get_all_permissions()

content_type = ContentType.objects.get_for_model(User)
LogEntry.objects.create(
    user=alice, content_type=content_type, object_id=str(alice.pk), object_repr="alice", action_flag=ADDITION
)
assert User.objects.filter(Q(username__startswith="u") | Q(email__icontains="EXAMPLE")).count() == 6
assert list(Group.objects.annotate(n=Count("user")).values_list("name", "n")) == [("staff", 1)]
assert User.objects.aggregate(Max("id"))["id__max"] == User.objects.order_by("-id").first().id
entries = list(LogEntry.objects.select_related("user", "content_type").values_list("user__username", "content_type__model"))
assert entries == [("alice", "user")], entries

try:
    with transaction.atomic():
        User.objects.create(username="alice")
    raise AssertionError("a second alice was created")
except IntegrityError:
    pass
with transaction.atomic():
    bob = User.objects.create(username="bob")
    with transaction.atomic():
        bob.first_name = "Bob"
        bob.save()
alice.delete()  # Django deletes the log entry and the group membership first
assert LogEntry.objects.count() == 0
assert User.objects.count() == 6
assert User.objects.get(username="bob").first_name == "Bob"

call_command("flush", interactive=False, verbosity=0)
assert User.objects.count() == 0
call_command("migrate", "admin", "zero", verbosity=0)
assert "django_admin_log" not in connection.introspection.table_names()
call_command("migrate", verbosity=0)
assert "django_admin_log" in connection.introspection.table_names()
print("django ok")
