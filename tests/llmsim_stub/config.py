import enum


class ForwardMode(enum.IntEnum):
    EXTEND = 0
    DECODE = 1
