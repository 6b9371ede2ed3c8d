"""SQLAlchemy's ORM (over psycopg 3) against a running Bulwark: create_all (which inspects
pg_catalog with `= ANY (ARRAY[...])` and schema-qualified columns), a flush of many
objects with related rows (insertmanyvalues: `INSERT ... SELECT ... FROM (VALUES ...) AS
imp_sen(p0, p1, sen_counter) ORDER BY sen_counter RETURNING ...`), queries through
relationships, update, delete, and reflection of tables, columns, keys and indexes (read
with unnest() and generate_subscripts() in a select list and array_agg(... ORDER BY)), and a
Python enum stored in a PostgreSQL enum type (CREATE TYPE ... AS ENUM by create_all, read
back, filtered and ordered in the type's order, reflected, dropped by drop_all). Exits
non-zero on any mismatch.
Usage: python3 sqlalchemy_client.py PORT [USER]"""

import enum
import sys

from sqlalchemy import Enum, ForeignKey, String, create_engine, func, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

port = sys.argv[1]
user = sys.argv[2] if len(sys.argv) > 2 else "bulwark"


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    posts: Mapped[list["Post"]] = relationship(back_populates="author")


class Status(enum.Enum):
    draft = "draft"
    published = "published"
    archived = "archived"


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    status: Mapped[Status] = mapped_column(Enum(Status, name="post_status"), default=Status.draft)
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author] = relationship(back_populates="posts")


engine = create_engine(f"postgresql+psycopg://{user}@127.0.0.1:{port}/{user}")
Base.metadata.drop_all(engine)
Base.metadata.create_all(engine)
with Session(engine) as s:
    authors = [Author(name=f"a{i}", posts=[Post(title=f"p{i}-{j}") for j in range(3)]) for i in range(5)]
    s.add_all(authors)
    s.commit()
    ids = [a.id for a in authors]
    # insertmanyvalues hands the generated keys back in the objects' order.
    assert ids == sorted(ids) and len(set(ids)) == 5, ids
    assert s.scalar(select(func.count()).select_from(Post)) == 15
    a3 = s.scalars(select(Author).where(Author.name == "a3")).one()
    assert sorted(p.title for p in a3.posts) == ["p3-0", "p3-1", "p3-2"]
    a3.name = "renamed"
    s.delete(a3.posts[0])
    s.commit()
    assert s.scalar(select(func.count()).select_from(Post)) == 14
    assert s.scalar(select(Author.name).where(Author.id == a3.id)) == "renamed"
    # Enum values: stored as the type's labels, compared and ordered as the type orders them
    # (archived > published > draft), not alphabetically.
    posts = s.scalars(select(Post).order_by(Post.id)).all()
    posts[0].status = Status.archived
    posts[1].status = Status.published
    s.commit()
    assert s.scalar(select(func.count()).select_from(Post).where(Post.status == Status.draft)) == 12
    ordered = s.scalars(select(Post.status).order_by(Post.status.desc(), Post.id).limit(3)).all()
    assert ordered == [Status.archived, Status.published, Status.draft], ordered
    later = s.scalars(select(Post.id).where(Post.status > Status.draft).order_by(Post.id)).all()
    assert later == [posts[0].id, posts[1].id], later
insp = inspect(engine)
enums = [e for e in insp.get_enums() if e["name"] == "post_status"]
assert [(e["name"], e["labels"]) for e in enums] == [("post_status", ["draft", "published", "archived"])], enums
assert sorted(insp.get_table_names()) == ["authors", "posts"], insp.get_table_names()
columns = insp.get_columns("posts")
assert [c["name"] for c in columns] == ["id", "title", "status", "author_id"], columns
assert list(columns[2]["type"].enums) == ["draft", "published", "archived"], columns[2]
assert insp.get_pk_constraint("posts")["constrained_columns"] == ["id"]
fks = insp.get_foreign_keys("posts")
assert [(f["constrained_columns"], f["referred_table"], f["referred_columns"]) for f in fks] == [
    (["author_id"], "authors", ["id"])
], fks
with engine.begin() as c:
    c.exec_driver_sql("CREATE INDEX posts_title ON posts (title)")
indexes = [(i["name"], i["column_names"], i["unique"]) for i in insp.get_indexes("posts")]
assert indexes == [("posts_title", ["title"], False)], indexes
Base.metadata.drop_all(engine)
with engine.connect() as c:
    assert c.exec_driver_sql("SELECT count(*) FROM pg_type WHERE typname = 'post_status'").scalar() == 0
print("sqlalchemy ok")
