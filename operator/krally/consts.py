"""Constants of Rally's plugin API; Rally plugins import them as ``from krally import consts``."""

JSON_SCHEMA = "http://json-schema.org/draft-04/schema#"
JSON_SCHEMA7 = "http://json-schema.org/draft-07/schema#"


class HookStatus:
    SUCCESS = "success"
    FAILED = "failed"
    VALIDATION_FAILED = "validation_failed"

    @classmethod
    def all(cls) -> list[str]:
        return [cls.SUCCESS, cls.FAILED, cls.VALIDATION_FAILED]


class EventUnit:
    ITERATION = "iteration"
    TIME = "time"
