// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {Base64} from "@openzeppelin/contracts/utils/Base64.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

import {ICourseCertificate} from "./interfaces/ICourseCertificate.sol";
import {ICourseMarket} from "./interfaces/ICourseMarket.sol";
import {IERC5192} from "./interfaces/IERC5192.sol";

/// @title CourseCertificate
/// @notice Soulbound (ERC-5192) course certificates with fully on-chain metadata; see
/// {ICourseCertificate}.
/// @dev Token id: `courseId << 160 | uint160(learner)`. Per certificate one slot besides
/// ERC-721's owner and balance: `issuedAt` and `recordHash`. Revocations live in a separate
/// mapping that is only written when a certificate is revoked.
contract CourseCertificate is ICourseCertificate, IERC5192, ERC721, AccessControl, EIP712 {
    using Strings for uint256;
    using Strings for address;

    /// @notice Role of the platform's minting keys: may issue and revoke certificates of any
    /// course.
    bytes32 public constant ISSUER_ROLE = keccak256("ISSUER_ROLE");

    /// @notice The EIP-712 type hash of a claim voucher.
    bytes32 public constant VOUCHER_TYPEHASH = keccak256(
        "Voucher(address learner,uint256 courseId,bytes28 recordHash,uint256 deadline)"
    );

    /// @dev One slot per certificate.
    struct Record {
        uint32 issuedAt;
        bytes28 recordHash;
    }

    /// @dev One slot, written only on revocation.
    struct Revocation {
        uint32 revokedAt;
        uint8 reason;
    }

    ICourseMarket private immutable _market;
    mapping(uint256 tokenId => Record) private _records;
    mapping(uint256 tokenId => Revocation) private _revocations;
    mapping(address provider => mapping(address issuer => bool)) private _issuers;

    /// @param admin The default admin (grants ISSUER_ROLE).
    /// @param market_ The CourseMarket whose courses are certified.
    constructor(address admin, ICourseMarket market_)
        ERC721("Tuition Certificate", "TUCERT")
        EIP712("Tuition Certificate", "1")
    {
        _market = market_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---------------------------------------------------------------- issuing

    /// @inheritdoc ICourseCertificate
    /// @dev Reverts with UnknownCourse or InvalidCourseId (from the market) for unknown courses,
    /// ERC721InvalidReceiver for a zero learner and NoCourseAccess unless the learner holds
    /// access to the course in the market.
    /// @param learner The holder (one certificate per learner and course: AlreadyCertified).
    /// @param courseId The course (the caller must be its issuer: NotIssuer).
    /// @param recordHash First 28 bytes of the off-chain record's keccak-256 (ZeroRecordHash).
    /// @return tokenId `courseId << 160 | uint160(learner)`.
    function mint(address learner, uint256 courseId, bytes28 recordHash)
        external
        returns (uint256 tokenId)
    {
        if (!_isIssuer(_provider(courseId), msg.sender)) revert NotIssuer(courseId, msg.sender);
        return _issue(learner, courseId, recordHash, msg.sender);
    }

    /// @inheritdoc ICourseCertificate
    /// @dev Replay is impossible because a (learner, course) pair has a single token id; the
    /// signature must be canonical (low `s`), as ECDSA enforces. The caller must hold access to
    /// the course in the market when claiming (NoCourseAccess), whatever the voucher says.
    /// @param courseId The course.
    /// @param recordHash The record hash the voucher was signed for.
    /// @param deadline Last valid second of the voucher (VoucherExpired).
    /// @param signature 65-byte ECDSA signature of `voucherDigest(msg.sender, ...)` by an issuer
    /// of the course (NotIssuer).
    /// @return tokenId The minted certificate.
    function claim(uint256 courseId, bytes28 recordHash, uint256 deadline, bytes calldata signature)
        external
        returns (uint256 tokenId)
    {
        if (block.timestamp > deadline) revert VoucherExpired(deadline);
        address provider = _provider(courseId);
        address signer = ECDSA.recoverCalldata(
            _voucherDigest(msg.sender, courseId, recordHash, deadline), signature
        );
        if (!_isIssuer(provider, signer)) revert NotIssuer(courseId, signer);
        return _issue(msg.sender, courseId, recordHash, signer);
    }

    /// @inheritdoc ICourseCertificate
    /// @dev Reason codes: 1 issued in error, 2 academic misconduct, 3 course withdrawn, 4 learner
    /// request; others are issuer-defined. The certificate stays with its holder, marked revoked.
    /// @param tokenId The certificate (UnknownCertificate, AlreadyRevoked).
    /// @param reason The reason code.
    function revoke(uint256 tokenId, uint8 reason) external {
        if (_ownerOf(tokenId) == address(0)) revert UnknownCertificate(tokenId);
        uint256 courseId = tokenId >> 160;
        if (!_isIssuer(_provider(courseId), msg.sender)) revert NotIssuer(courseId, msg.sender);
        if (_revocations[tokenId].revokedAt != 0) revert AlreadyRevoked(tokenId);
        _revocations[tokenId] = Revocation({revokedAt: uint32(block.timestamp), reason: reason});
        emit CertificateRevoked(tokenId, reason, msg.sender);
    }

    /// @inheritdoc ICourseCertificate
    /// @dev The caller acts as a provider: the authorization applies to every course whose
    /// provider is the caller.
    /// @param issuer The key to (de)authorize.
    /// @param allowed Whether it may issue and revoke certificates of the caller's courses.
    function setIssuer(address issuer, bool allowed) external {
        _issuers[msg.sender][issuer] = allowed;
        emit IssuerSet(msg.sender, issuer, allowed);
    }

    // ---------------------------------------------------------------- soulbound

    /// @notice Approvals are meaningless for soulbound tokens: always reverts.
    /// @param tokenId The token.
    function approve(address, uint256 tokenId) public pure override {
        revert Soulbound(tokenId);
    }

    /// @notice Approvals are meaningless for soulbound tokens: always reverts (tokenId 0).
    function setApprovalForAll(address, bool) public pure override {
        revert Soulbound(0);
    }

    /// @inheritdoc IERC5192
    /// @dev Reverts with UnknownCertificate for tokens never issued.
    function locked(uint256 tokenId) external view returns (bool) {
        if (_ownerOf(tokenId) == address(0)) revert UnknownCertificate(tokenId);
        return true;
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ICourseCertificate
    function isIssuerFor(uint256 courseId, address account) external view returns (bool) {
        return _isIssuer(_provider(courseId), account);
    }

    /// @notice Whether `provider` authorized `issuer` for its courses.
    /// @param provider A course provider.
    /// @param issuer The account to check.
    /// @return True if authorized with `setIssuer`.
    function isProviderIssuer(address provider, address issuer) external view returns (bool) {
        return _issuers[provider][issuer];
    }

    /// @inheritdoc ICourseCertificate
    function verify(uint256 tokenId) public view returns (Certificate memory cert) {
        address holder = _ownerOf(tokenId);
        if (holder == address(0)) revert UnknownCertificate(tokenId);
        Record memory record = _records[tokenId];
        Revocation memory revocation = _revocations[tokenId];
        cert = Certificate({
            holder: holder,
            courseId: tokenId >> 160,
            issuer: _provider(tokenId >> 160),
            issuedAt: record.issuedAt,
            recordHash: record.recordHash,
            revoked: revocation.revokedAt != 0,
            revokedAt: revocation.revokedAt,
            revokeReason: revocation.reason
        });
    }

    /// @inheritdoc ICourseCertificate
    function tokenIdFor(address learner, uint256 courseId) external pure returns (uint256) {
        return _tokenId(learner, courseId);
    }

    /// @inheritdoc ICourseCertificate
    function voucherDigest(address learner, uint256 courseId, bytes28 recordHash, uint256 deadline)
        external
        view
        returns (bytes32)
    {
        return _voucherDigest(learner, courseId, recordHash, deadline);
    }

    /// @inheritdoc ICourseCertificate
    function market() external view returns (address) {
        return address(_market);
    }

    /// @notice The certificate's metadata as a `data:application/json;base64,` URI with an SVG
    /// image, computed entirely on-chain.
    /// @dev Reverts with ERC721NonexistentToken for tokens never issued.
    /// @param tokenId The certificate.
    /// @return The data URI.
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        _requireOwned(tokenId);
        Certificate memory cert = verify(tokenId);
        string memory title = _market.courseTitle(cert.courseId);
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

    /// @notice ERC-165: ERC-721, ERC-721 Metadata, ERC-5192, AccessControl and
    /// ICourseCertificate.
    /// @param interfaceId The interface id.
    /// @return True if supported.
    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721, AccessControl)
        returns (bool)
    {
        return interfaceId == type(IERC5192).interfaceId
            || interfaceId == type(ICourseCertificate).interfaceId
            || ERC721.supportsInterface(interfaceId) || AccessControl.supportsInterface(interfaceId);
    }

    // ---------------------------------------------------------------- internals

    /// @dev Soulbound: only mints pass; transfers and burns revert.
    function _update(address to, uint256 tokenId, address auth)
        internal
        override
        returns (address)
    {
        if (_ownerOf(tokenId) != address(0)) revert Soulbound(tokenId);
        return super._update(to, tokenId, auth);
    }

    /// @dev Writes the record and mints; `signer` is the minting account or voucher signer.
    function _issue(address learner, uint256 courseId, bytes28 recordHash, address signer)
        private
        returns (uint256 tokenId)
    {
        if (recordHash == bytes28(0)) revert ZeroRecordHash();
        tokenId = _tokenId(learner, courseId);
        // Checked here so the error is ours rather than ERC-721's.
        if (_ownerOf(tokenId) != address(0)) revert AlreadyCertified(learner, courseId);
        if (learner == address(0)) revert ERC721InvalidReceiver(address(0));
        // Whatever the rail (on-chain purchase, card, grant): the market is the one answer.
        if (!_market.hasAccess(courseId, learner)) revert NoCourseAccess(courseId, learner);
        _records[tokenId] = Record({issuedAt: uint32(block.timestamp), recordHash: recordHash});
        _mint(learner, tokenId);
        emit Locked(tokenId);
        emit CertificateMinted(tokenId, learner, courseId, signer, recordHash);
    }

    /// @dev The course's provider; reverts with the market's UnknownCourse for unknown ids.
    function _provider(uint256 courseId) private view returns (address) {
        return _market.courseProvider(courseId);
    }

    /// @dev Whether `account` holds ISSUER_ROLE or was authorized by `provider`.
    function _isIssuer(address provider, address account) private view returns (bool) {
        return hasRole(ISSUER_ROLE, account) || _issuers[provider][account];
    }

    /// @dev `courseId << 160 | uint160(learner)`. Course ids are sequential and far below 2**96;
    /// larger ones would alias smaller ones, so they revert (InvalidCourseId).
    function _tokenId(address learner, uint256 courseId) private pure returns (uint256) {
        if (courseId > type(uint96).max) revert InvalidCourseId(courseId);
        return (courseId << 160) | uint160(learner);
    }

    /// @dev The EIP-712 digest of a voucher in this contract's domain.
    function _voucherDigest(
        address learner,
        uint256 courseId,
        bytes28 recordHash,
        uint256 deadline
    ) private view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(VOUCHER_TYPEHASH, learner, courseId, recordHash, deadline))
        );
    }

    /// @dev The JSON `attributes` array.
    function _attributes(Certificate memory cert, string memory title)
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
    function _svg(Certificate memory cert, string memory title)
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
    function _svgFooter(Certificate memory cert) private pure returns (bytes memory) {
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
