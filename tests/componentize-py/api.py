"""The resource ``counter`` of the exported interface ``api``: componentize-py looks its class
up in the module named after the interface."""

from typing import Self

import wit_world.exports.api


class Counter(wit_world.exports.api.Counter):
    def __init__(self, start: int) -> None:
        self.value = start

    def add(self, amount: int) -> None:
        self.value += amount

    def get(self) -> int:
        return self.value

    @classmethod
    def merge(cls, a: Self, b: Self) -> Self:
        return cls(a.value + b.value)
