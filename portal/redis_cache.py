"""Django's Redis cache backend, reusing one client per connection pool.

Django builds a new `redis.Redis` object for every cache operation (about 0.3 ms, a third
of a cached page view); clients share their pool's connections and are thread-safe, so one
per pool serves every operation alike.
"""

from django.core.cache.backends import redis as django_redis


class ReusingClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write: bool = False):
        index = self._get_connection_pool_index(write)
        if index not in self._clients:
            self._clients[index] = super().get_client(key, write=write)
        return self._clients[index]


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = ReusingClient
