"""SQLAlchemy's ORM (over psycopg 3) against a running Bulwark: create_all (which inspects
pg_catalog with `= ANY (ARRAY[...])` and schema-qualified columns), a flush of many
objects with related rows (insertmanyvalues: `INSERT ... SELECT ... FROM (VALUES ...) AS
imp_sen(p0, p1, sen_counter) ORDER BY sen_counter RETURNING ...`), queries through
relationships, update, delete, and reflection of tables, columns, keys and indexes (read
with unnest() and generate_subscripts() in a select list and array_agg(... ORDER BY)). Exits non-zero on any mismatch.
Usage: python3 sqlalchemy_client.py PORT [USER]"""

import sys

from sqlalchemy import ForeignKey, String, create_engine, func, inspect, select
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


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
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
insp = inspect(engine)
assert sorted(insp.get_table_names()) == ["authors", "posts"], insp.get_table_names()
assert [c["name"] for c in insp.get_columns("posts")] == ["id", "title", "author_id"]
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
print("sqlalchemy ok")
