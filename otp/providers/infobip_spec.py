"""Values Infobip's 2FA API defines, shared by the provisioning command and the emulator."""

from __future__ import annotations

#: Infobip's ``Language`` enum, spelled as the API wants it (underscores, not hyphens).
LANGUAGES = frozenset(
    {
        *("en", "es", "ca", "da", "nl", "fr", "de", "it", "ja", "ko", "no"),
        *("pl", "ru", "sv", "fi", "hr", "sl", "ro", "pt_pt", "pt_br", "zh_cn", "zh_tw"),
    }
)
#: The PIN placeholder a message template must contain.
PIN_PLACEHOLDER = "{{pin}}"
