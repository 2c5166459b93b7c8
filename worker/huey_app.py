"""The Huey instance, alone: SqliteHuey under CAPO_LAB_HOME, or RedisHuey for a redis:// queue URL."""

from __future__ import annotations

from huey import Huey, RedisHuey, SqliteHuey

from capo_lab.settings import Settings


def make_huey(settings: Settings) -> Huey:
    url = settings.queue_url
    if url and url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("capo-lab", url=url)
    if url:
        raise ValueError(f"CAPO_LAB_QUEUE_URL must be a redis:// URL or unset (SQLite queue), got {url!r}")
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("capo-lab", filename=str(settings.home_dir / "queue.db"))


huey = make_huey(Settings())
