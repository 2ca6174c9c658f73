"""Checks and normalises contacts: emails with email-validator (syntax only), phones to E.164."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneNumberType

_NO_SMS = {
    PhoneNumberType.FIXED_LINE: "a fixed line",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.VOIP: None,  # many VoIP numbers take SMS
}


def normalise_email(text: str) -> str:
    """The normalised address, lower-cased so that one person is one recipient; ValueError
    with the reason if it is not an address."""
    try:
        return str(validate_email(text, check_deliverability=False).normalized).lower()
    except EmailNotValidError as exc:
        raise ValueError(f"{text!r} is not an email address: {exc}") from None


def check_region(region: str) -> bool:
    return region in phonenumbers.SUPPORTED_REGIONS


def normalise_phone(text: str, region: str) -> tuple[str, str]:
    """(E.164 number, why it cannot take SMS or ""); ValueError if it is not a number."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{text!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{text!r} is not a valid phone number (default region {region})")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    kind = _NO_SMS.get(phonenumbers.number_type(number))
    return e164, (f"{e164} is {kind}: it cannot take SMS" if kind else "")
