"""A NASDAQ TotalView-ITCH 5.0 parser written with construct, for tests and
benchmarks: an oracle that shares no code with binrec.

Written from the message table of NASDAQ's TotalView-ITCH 5.0
specification (section 1.3 and section 4), field by field with the
specification's names, not from binrec's format strings.  Every message is
a 2-byte big-endian length counting everything after it, then a one-byte
message type, then the type's fields: ``Prefixed(Int16ub, ...)`` with a
``Switch`` on the type, repeated by ``GreedyRange`` to the end of the data.
"""

from __future__ import annotations

from typing import Any

from construct import Bytes, GreedyRange, Int16ub, Int32ub, Int64ub, Prefixed, Struct, Switch, this

#: every message starts with these (after the type byte)
HEADER = (
    "stock_locate" / Int16ub,
    "tracking_number" / Int16ub,
    "timestamp" / Bytes(6),  # nanoseconds since midnight, 48 bits
)

SYSTEM_EVENT = Struct(*HEADER, "event_code" / Bytes(1))
STOCK_DIRECTORY = Struct(
    *HEADER,
    "stock" / Bytes(8),
    "market_category" / Bytes(1),
    "financial_status_indicator" / Bytes(1),
    "round_lot_size" / Int32ub,
    "round_lots_only" / Bytes(1),
    "issue_classification" / Bytes(1),
    "issue_subtype" / Bytes(2),
    "authenticity" / Bytes(1),
    "short_sale_threshold_indicator" / Bytes(1),
    "ipo_flag" / Bytes(1),
    "luld_reference_price_tier" / Bytes(1),
    "etp_flag" / Bytes(1),
    "etp_leverage_factor" / Int32ub,
    "inverse_indicator" / Bytes(1),
)
ADD_ORDER = Struct(
    *HEADER,
    "order_reference_number" / Int64ub,
    "buy_sell_indicator" / Bytes(1),
    "shares" / Int32ub,
    "stock" / Bytes(8),
    "price" / Int32ub,
)
ADD_ORDER_MPID = Struct(
    *HEADER,
    "order_reference_number" / Int64ub,
    "buy_sell_indicator" / Bytes(1),
    "shares" / Int32ub,
    "stock" / Bytes(8),
    "price" / Int32ub,
    "attribution" / Bytes(4),
)
ORDER_EXECUTED = Struct(
    *HEADER, "order_reference_number" / Int64ub, "executed_shares" / Int32ub, "match_number" / Int64ub
)
ORDER_EXECUTED_WITH_PRICE = Struct(
    *HEADER,
    "order_reference_number" / Int64ub,
    "executed_shares" / Int32ub,
    "match_number" / Int64ub,
    "printable" / Bytes(1),
    "execution_price" / Int32ub,
)
ORDER_CANCEL = Struct(*HEADER, "order_reference_number" / Int64ub, "cancelled_shares" / Int32ub)
ORDER_DELETE = Struct(*HEADER, "order_reference_number" / Int64ub)
ORDER_REPLACE = Struct(
    *HEADER,
    "original_order_reference_number" / Int64ub,
    "new_order_reference_number" / Int64ub,
    "shares" / Int32ub,
    "price" / Int32ub,
)
TRADE = Struct(
    *HEADER,
    "order_reference_number" / Int64ub,
    "buy_sell_indicator" / Bytes(1),
    "shares" / Int32ub,
    "stock" / Bytes(8),
    "price" / Int32ub,
    "match_number" / Int64ub,
)

MESSAGES = {
    b"S": SYSTEM_EVENT,
    b"R": STOCK_DIRECTORY,
    b"A": ADD_ORDER,
    b"F": ADD_ORDER_MPID,
    b"E": ORDER_EXECUTED,
    b"C": ORDER_EXECUTED_WITH_PRICE,
    b"X": ORDER_CANCEL,
    b"D": ORDER_DELETE,
    b"U": ORDER_REPLACE,
    b"P": TRADE,
}

ITCH = GreedyRange(Prefixed(Int16ub, Struct("message_type" / Bytes(1), "body" / Switch(this.message_type, MESSAGES))))


def parse(data: bytes) -> list[tuple[bytes, tuple[Any, ...]]]:
    """(message type, field values in the specification's order) per message."""
    return [(m.message_type, tuple(v for k, v in m.body.items() if not k.startswith("_"))) for m in ITCH.parse(data)]
