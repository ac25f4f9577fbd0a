// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Base64} from "@openzeppelin/contracts/utils/Base64.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";

import {ICourseCertificate} from "./interfaces/ICourseCertificate.sol";

/// @title CertificateRenderer
/// @notice A certificate's metadata as a `data:application/json;base64,` URI with an SVG image,
/// computed entirely on-chain from the certificate's facts and its course title.
/// @dev Stateless; deployed by CourseCertificate's constructor. The title is printable UTF-8
/// (CourseMarket refuses anything else), so escaping `"`, `\`, `&`, `<`, `>` and `'` is enough
/// for the JSON to parse and the SVG to be well-formed XML.
contract CertificateRenderer {
    using Strings for uint256;
    using Strings for address;

    /// @notice The metadata URI of `cert`.
    /// @param cert The certificate's facts (`CourseCertificate.verify`).
    /// @param title The course title.
    /// @return The data URI.
    function render(ICourseCertificate.Certificate calldata cert, string calldata title)
        external
        pure
        returns (string memory)
    {
        bytes memory json = abi.encodePacked(
            '{"name":"',
            Strings.escapeJSON(title),
            ' - Tuition certificate","description":"Soulbound certificate of completion of a',
            ' Tuition course, verifiable on-chain.","image":"data:image/svg+xml;base64,',
            Base64.encode(_svg(cert, title)),
            '","attributes":',
            _attributes(cert, title),
            "}"
        );
        return string.concat("data:application/json;base64,", Base64.encode(json));
    }

    /// @dev The JSON `attributes` array.
    function _attributes(ICourseCertificate.Certificate memory cert, string memory title)
        private
        pure
        returns (bytes memory)
    {
        return abi.encodePacked(
            '[{"trait_type":"Course","value":"',
            Strings.escapeJSON(title),
            '"},{"trait_type":"Course ID","value":',
            cert.courseId.toString(),
            '},{"trait_type":"Learner","value":"',
            cert.holder.toChecksumHexString(),
            '"},{"trait_type":"Issuer","value":"',
            cert.issuer.toChecksumHexString(),
            '"},{"trait_type":"Issued","value":"',
            _date(cert.issuedAt),
            '"},{"trait_type":"Status","value":"',
            cert.revoked ? "Revoked" : "Valid",
            '"},{"trait_type":"Record hash","value":"',
            _hex28(cert.recordHash),
            '"}]'
        );
    }

    /// @dev The certificate image.
    function _svg(ICourseCertificate.Certificate memory cert, string memory title)
        private
        pure
        returns (bytes memory)
    {
        uint256 length = bytes(title).length;
        string memory titleSize = length <= 32 ? "24" : length <= 56 ? "16" : "11";
        return abi.encodePacked(
            '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="420" viewBox="0 0 600 420"',
            ' font-family="Georgia,serif" text-anchor="middle">',
            '<rect width="600" height="420" fill="#fbf8f0"/>',
            '<rect x="16" y="16" width="568" height="388" fill="none" stroke="#1f3a5f"',
            ' stroke-width="4"/><text x="300" y="78" font-size="28" fill="#1f3a5f">',
            "Certificate of Completion</text>",
            '<text x="300" y="125" font-size="14">This certifies that</text>',
            '<text x="300" y="152" font-size="13" font-family="monospace">',
            cert.holder.toChecksumHexString(),
            '</text><text x="300" y="190" font-size="14">has completed</text>',
            _svgTitle(title, titleSize),
            _svgFooter(cert)
        );
    }

    /// @dev The course title line of the image.
    function _svgTitle(string memory title, string memory size)
        private
        pure
        returns (bytes memory)
    {
        return abi.encodePacked(
            '<text x="300" y="232" font-size="',
            size,
            '" font-weight="bold" fill="#1f3a5f">',
            _escapeXML(title),
            "</text>"
        );
    }

    /// @dev Issue date, issuer, status, and the REVOKED stamp if revoked.
    function _svgFooter(ICourseCertificate.Certificate memory cert)
        private
        pure
        returns (bytes memory)
    {
        return abi.encodePacked(
            '<text x="300" y="285" font-size="13">Issued ',
            _date(cert.issuedAt),
            " by ",
            cert.issuer.toChecksumHexString(),
            '</text><text x="300" y="330" font-size="18" font-weight="bold" fill="',
            cert.revoked ? '#c62828">REVOKED' : '#2e7d32">VALID',
            '</text><text x="300" y="384" font-size="9" font-family="monospace" fill="#555">',
            "Course #",
            cert.courseId.toString(),
            " - record ",
            _hex28(cert.recordHash),
            "</text>",
            cert.revoked
                ? '<text x="300" y="250" font-size="84" font-weight="bold" fill="#c62828" fill-opacity="0.3" transform="rotate(-18 300 250)">REVOKED</text>'
                : "",
            "</svg>"
        );
    }

    /// @dev `0x` and 56 hex digits.
    function _hex28(bytes28 value) private pure returns (string memory) {
        return (uint256(bytes32(value)) >> 32).toHexString(28);
    }

    /// @dev Unix seconds to `YYYY-MM-DD` (UTC), with the civil-from-days algorithm of Howard
    /// Hinnant (days since 1970-01-01 to a proleptic Gregorian date).
    function _date(uint256 timestamp) private pure returns (string memory) {
        (uint256 year, uint256 month, uint256 day) = _civil(timestamp / 1 days);
        return string.concat(year.toString(), "-", _pad2(month), "-", _pad2(day));
    }

    /// @dev Days since the epoch to (year, month, day). Valid for every uint32 timestamp.
    function _civil(uint256 daysSinceEpoch)
        private
        pure
        returns (uint256 year, uint256 month, uint256 day)
    {
        uint256 z = daysSinceEpoch + 719_468; // days since 0000-03-01
        uint256 era = z / 146_097;
        uint256 doe = z - era * 146_097; // [0, 146096]
        uint256 yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
        uint256 doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
        uint256 mp = (5 * doy + 2) / 153; // [0, 11], March-based
        day = doy - (153 * mp + 2) / 5 + 1;
        month = mp < 10 ? mp + 3 : mp - 9;
        year = yoe + era * 400 + (month <= 2 ? 1 : 0);
    }

    /// @dev Two-digit decimal.
    function _pad2(uint256 value) private pure returns (string memory) {
        return value < 10 ? string.concat("0", value.toString()) : value.toString();
    }

    /// @dev Escapes `&`, `<`, `>`, `"` and `'` for XML text and attributes, and replaces the
    /// control characters XML 1.0 forbids with spaces. Two passes: size, then write.
    function _escapeXML(string memory input) private pure returns (bytes memory out) {
        bytes memory text = bytes(input);
        uint256 length = text.length;
        uint256 size = length;
        for (uint256 i; i < length; ++i) {
            bytes1 c = text[i];
            if (c == "&") size += 4;
            else if (c == "<" || c == ">") size += 3;
            else if (c == '"' || c == "'") size += 5;
        }
        out = new bytes(size);
        uint256 j;
        for (uint256 i; i < length; ++i) {
            bytes1 c = text[i];
            bytes memory entity;
            if (c == "&") entity = "&amp;";
            else if (c == "<") entity = "&lt;";
            else if (c == ">") entity = "&gt;";
            else if (c == '"') entity = "&quot;";
            else if (c == "'") entity = "&apos;";
            if (entity.length == 0) {
                out[j++] = uint8(c) < 0x20 ? bytes1(" ") : c;
            } else {
                for (uint256 k; k < entity.length; ++k) {
                    out[j++] = entity[k];
                }
            }
        }
    }
}
