// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Text
/// @notice Rules for the text the contracts put into certificate metadata (course titles,
/// provider names) and for website domains, so that every `tokenURI` is valid JSON with a valid
/// XML (SVG) image.
/// @dev `isPrintable` accepts exactly the well-formed UTF-8 (RFC 3629: no overlong forms, no
/// surrogates, nothing above U+10FFFF) whose characters XML 1.0 allows, minus every control
/// character: it rejects U+0000..U+001F (tab and newlines too), U+007F..U+009F, U+FFFE and
/// U+FFFF. Internal functions: inlined into the caller, nothing to link.
library Text {
    /// @notice Where `text` first breaks the printable-UTF-8 rule.
    /// @param text The bytes to check.
    /// @return ok True if the whole text is printable UTF-8.
    /// @return offset The byte offset of the first offending sequence (the length if ok).
    function isPrintable(bytes memory text) internal pure returns (bool ok, uint256 offset) {
        uint256 length = text.length;
        uint256 i;
        while (i < length) {
            uint8 c = uint8(text[i]);
            uint256 size;
            if (c < 0x80) {
                // ASCII: C0 controls and DEL are refused.
                if (c < 0x20 || c == 0x7f) return (false, i);
                size = 1;
            } else if (c >= 0xc2 && c <= 0xdf) {
                // Two bytes, U+0080..U+07FF; U+0080..U+009F are C1 controls.
                if (c == 0xc2 && i + 1 < length && uint8(text[i + 1]) < 0xa0) return (false, i);
                size = 2;
            } else if (c >= 0xe0 && c <= 0xef) {
                size = 3;
            } else if (c >= 0xf0 && c <= 0xf4) {
                size = 4;
            } else {
                // A continuation byte first, an overlong lead (C0, C1) or above U+10FFFF.
                return (false, i);
            }
            if (i + size > length) return (false, i);
            // The second byte's range depends on the lead (RFC 3629's table): this excludes
            // overlong forms (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code points
            // above U+10FFFF (F4 90..BF).
            uint8 second = size > 1 ? uint8(text[i + 1]) : 0x80;
            uint8 low = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
            uint8 high = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
            if (size > 1 && (second < low || second > high)) return (false, i);
            for (uint256 k = 2; k < size; ++k) {
                if (uint8(text[i + k]) & 0xc0 != 0x80) return (false, i);
            }
            // U+FFFE and U+FFFF (EF BF BE / EF BF BF) are not XML characters.
            if (c == 0xef && second == 0xbf && uint8(text[i + 2]) >= 0xbe) return (false, i);
            // Cannot overflow: i + size <= length was checked above.
            unchecked {
                i += size;
            }
        }
        return (true, length);
    }

    /// @notice Whether `domain` is a lowercase host name: labels of `a-z`, `0-9` and `-` (not at
    /// a label's ends), 1..63 bytes each, joined by single dots, 253 bytes at most, at least two
    /// labels.
    /// @param domain The bytes to check.
    /// @return True if `domain` is such a host name.
    function isDomain(bytes memory domain) internal pure returns (bool) {
        uint256 length = domain.length;
        if (length == 0 || length > 253) return false;
        uint256 labelLength;
        uint256 dots;
        bytes1 previous = ".";
        for (uint256 i; i < length; ++i) {
            bytes1 c = domain[i];
            if (c == ".") {
                if (labelLength == 0 || previous == "-") return false;
                labelLength = 0;
                ++dots;
            } else if ((c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c == "-") {
                if (c == "-" && labelLength == 0) return false;
                if (++labelLength > 63) return false;
            } else {
                return false;
            }
            previous = c;
        }
        return labelLength != 0 && previous != "-" && dots != 0;
    }
}
