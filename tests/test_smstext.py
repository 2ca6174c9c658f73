"""SMS text: GSM-7 vs UCS-2, lengths and segment counts, and normalisation."""

from __future__ import annotations

import pytest

from reminder_cli.smstext import SmsInfo, normalise_sms, sms_info

EMOJI = "\N{CHERRY BLOSSOM}"  # outside the BMP: two UTF-16 code units
NOT_GSM = "\N{LATIN SMALL LETTER L WITH STROKE}"  # ł: in the BMP, not in GSM 03.38


def test_160_plain_characters_fit_one_gsm7_segment() -> None:
    assert sms_info("a" * 160) == SmsInfo("GSM-7", 160, 1)


def test_161_plain_characters_need_two_gsm7_segments() -> None:
    assert sms_info("a" * 161) == SmsInfo("GSM-7", 161, 2)


@pytest.mark.parametrize(("length", "segments"), [(306, 2), (307, 3), (459, 3), (460, 4)])
def test_multipart_gsm7_segments_hold_153_septets(length: int, segments: int) -> None:
    assert sms_info("a" * length) == SmsInfo("GSM-7", length, segments)


def test_70_ucs2_code_units_fit_one_segment() -> None:
    text = NOT_GSM + "a" * 69
    assert sms_info(text) == SmsInfo("UCS-2", 70, 1)


def test_71_ucs2_code_units_need_two_segments() -> None:
    text = NOT_GSM + "a" * 70
    assert sms_info(text) == SmsInfo("UCS-2", 71, 2)


@pytest.mark.parametrize(("length", "segments"), [(134, 2), (135, 3)])
def test_multipart_ucs2_segments_hold_67_code_units(length: int, segments: int) -> None:
    assert sms_info(NOT_GSM + "a" * (length - 1)) == SmsInfo("UCS-2", length, segments)


def test_an_emoji_in_a_patient_name_forces_ucs2_and_counts_two_units() -> None:
    body = f"Hi Ana {EMOJI}, see you tomorrow at 10:00 at Maple Street Clinic."
    info = sms_info(body)
    assert info.encoding == "UCS-2"
    assert info.length == len(body) + 1  # the emoji is a surrogate pair
    assert info.segments == 1


def test_an_emoji_name_pushes_a_message_of_69_units_past_one_segment() -> None:
    assert sms_info("a" * 68 + EMOJI) == SmsInfo("UCS-2", 70, 1)
    assert sms_info("a" * 69 + EMOJI) == SmsInfo("UCS-2", 71, 2)


def test_a_surrogate_pair_is_never_split_across_segments() -> None:
    # 66 + 2 + 66 = 134 units would fit two parts of 67 only by splitting the emoji.
    assert sms_info("a" * 66 + EMOJI + "a" * 66) == SmsInfo("UCS-2", 134, 3)


def test_extension_characters_count_two_septets() -> None:
    assert sms_info("{" * 80) == SmsInfo("GSM-7", 160, 1)
    assert sms_info("€" + "a" * 159) == SmsInfo("GSM-7", 161, 2)
    assert sms_info("[]{}|~^\\€") == SmsInfo("GSM-7", 18, 1)


def test_an_escape_pair_is_never_split_across_segments() -> None:
    # 152 + 2 + 152 = 306 septets would fit two parts of 153 only by splitting the euro sign.
    assert sms_info("a" * 152 + "€" + "a" * 152) == SmsInfo("GSM-7", 306, 3)


def test_gsm7_accented_letters_and_greek_capitals_stay_gsm7() -> None:
    assert sms_info("José Müller, Øresund, Ñoño? ¿ΔΦΓΛΩΠΨΣΘΞ @£$¥").encoding == "GSM-7"


def test_empty_text_takes_no_segment() -> None:
    assert sms_info("") == SmsInfo("GSM-7", 0, 0)


def test_word_processor_punctuation_would_force_ucs2_but_normalises_to_gsm7() -> None:
    raw = "It\u2019s \u201cMaple\u201d \u2013 see Dr\u202fLee at\u00a010:00\u2026 \u2014 thanks"
    assert sms_info(raw).encoding == "UCS-2"
    plain = normalise_sms(raw)
    assert plain == 'It\'s "Maple" - see Dr Lee at 10:00... - thanks'
    assert sms_info(plain) == SmsInfo("GSM-7", len(plain), 1)


def test_normalising_removes_invisible_characters_and_windows_line_ends() -> None:
    assert normalise_sms("\ufeffHello\u200b there\r\nBye\tnow") == "Hello there\nBye now"


def test_normalising_leaves_letters_in_names_and_emoji_alone() -> None:
    text = f"Zoë Łukasz Ana {EMOJI} José"
    assert normalise_sms(text) == text
