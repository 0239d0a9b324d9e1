from .base import Feed, Runner, backends, check_feed, create_runner

__all__ = ["Feed", "Runner", "backends", "check_feed", "create_runner"]
