"""How categories, channels, transaction types and offer kinds read in a sentence: data, no computation."""

CATEGORY_WORDS: dict[str, str] = {
    "groceries": "grocery shopping",
    "fuel": "fuel",
    "travel": "travel",
    "restaurants": "restaurant bills",
    "online": "online shopping",
    "electronics": "electronics",
    "pharmacy": "pharmacy purchases",
    "clothing": "clothing",
    "entertainment": "entertainment",
    "utilities": "utility bills",
    "mobile": "mobile phone bills",
    "internet": "internet bills",
    "taxes": "tax payments",
    "p2p": "payments to other people",
    "other": "other things",
}
CHANNEL_WORDS: dict[str, str] = {
    "app": "the mobile app",
    "web": "online banking",
    "branch": "a branch",
    "pos": "card terminals in shops",
    "other": "other channels",
}
TXN_TYPE_WORDS: dict[str, str] = {
    "purchase": "purchases",
    "bill_payment": "bill payments",
    "transfer": "transfers",
}
KIND_WORDS: dict[str, str] = {
    "multiplier": "points-multiplier",
    "bonus_points": "bonus-points",
    "cashback": "cashback",
    "informational": "informational",
}
EVENT_WORDS: dict[str, tuple[str, str]] = {  # offers_<event>_<kind>: (verb, its object)
    "sent": ("has received", "offers"),
    "viewed": ("has looked at", "offers"),
    "activated": ("has activated", "offers"),
    "completed": ("has completed", "offers"),
}
