// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICourseMarket} from "../interfaces/ICourseMarket.sol";
import {ICourseCertificate} from "../interfaces/ICourseCertificate.sol";

/// @title IndexerLogEmitter
/// @notice Test-only contract for the indexer's tests: emits the exact events of ICourseMarket
/// and ICourseCertificate with caller-chosen arguments, and many purchases per transaction for
/// bulk backfills. It has no state and checks nothing; never deploy it outside tests.
contract IndexerLogEmitter {
    // ERC-721 / ERC-5192 events the certificate contract also emits (the indexer ignores them).
    event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
    event Locked(uint256 tokenId);

    function courseCreated(uint256 courseId, address provider, uint32 refundWindow, string calldata title)
        external
    {
        emit ICourseMarket.CourseCreated(courseId, provider, refundWindow, title);
    }

    function courseUpdated(uint256 courseId, bool listed, uint32 refundWindow) external {
        emit ICourseMarket.CourseUpdated(courseId, listed, refundWindow);
    }

    function priceSet(uint256 courseId, address token, uint256 price, bool accepted) external {
        emit ICourseMarket.PriceSet(courseId, token, price, accepted);
    }

    function purchased(
        uint256 courseId,
        address buyer,
        address recipient,
        address token,
        uint256 amount,
        uint256 fee,
        bytes32 orderRef
    ) external {
        emit ICourseMarket.CoursePurchased(courseId, buyer, recipient, token, amount, fee, orderRef);
    }

    /// @notice `n` purchases of `courseId` for recipients `firstRecipient`, `firstRecipient + 1`...
    function purchases(
        uint256 courseId,
        address buyer,
        uint160 firstRecipient,
        uint256 n,
        address token,
        uint256 amount,
        uint256 fee
    ) external {
        for (uint256 i = 0; i < n; ++i) {
            emit ICourseMarket.CoursePurchased(
                courseId, buyer, address(firstRecipient + uint160(i)), token, amount, fee, bytes32(0)
            );
        }
    }

    function accessGranted(uint256 courseId, address learner, ICourseMarket.AccessSource source, bytes32 ref)
        external
    {
        emit ICourseMarket.AccessGranted(courseId, learner, source, ref);
    }

    function accessRevoked(uint256 courseId, address learner, ICourseMarket.AccessSource source, bytes32 ref)
        external
    {
        emit ICourseMarket.AccessRevoked(courseId, learner, source, ref);
    }

    function refunded(
        uint256 courseId,
        address learner,
        address payer,
        address token,
        uint256 amount,
        address by
    ) external {
        emit ICourseMarket.Refunded(courseId, learner, payer, token, amount, by);
    }

    function released(address provider, address token, uint256 net, uint256 fee) external {
        emit ICourseMarket.Released(provider, token, net, fee);
    }

    function withdrawn(address payee, address token, uint256 amount) external {
        emit ICourseMarket.Withdrawn(payee, token, amount);
    }

    function feeChanged(uint16 previousBps, uint16 newBps) external {
        emit ICourseMarket.FeeChanged(previousBps, newBps);
    }

    function treasuryChanged(address previous, address current) external {
        emit ICourseMarket.TreasuryChanged(previous, current);
    }

    function tokenAllowed(address token, bool allowed) external {
        emit ICourseMarket.TokenAllowed(token, allowed);
    }

    function delegateSet(address provider, address delegate, bool allowed) external {
        emit ICourseMarket.DelegateSet(provider, delegate, allowed);
    }

    function certificateMinted(
        uint256 tokenId,
        address learner,
        uint256 courseId,
        address signer,
        bytes28 recordHash
    ) external {
        emit ICourseCertificate.CertificateMinted(tokenId, learner, courseId, signer, recordHash);
    }

    function certificateRevoked(uint256 tokenId, uint8 reason, address by) external {
        emit ICourseCertificate.CertificateRevoked(tokenId, reason, by);
    }

    function issuerSet(address provider, address issuer, bool allowed) external {
        emit ICourseCertificate.IssuerSet(provider, issuer, allowed);
    }

    function certificateRemoved(uint256 tokenId, address holder) external {
        emit ICourseCertificate.CertificateRemoved(tokenId, holder);
    }

    function certificateReplaced(uint256 tokenId, uint256 newTokenId) external {
        emit ICourseCertificate.CertificateReplaced(tokenId, newTokenId);
    }

    function providerProfileSet(address provider, string calldata name, string calldata domain)
        external
    {
        emit ICourseCertificate.ProviderProfileSet(provider, name, domain);
    }

    function providerVerificationSet(
        address provider,
        bool verified,
        bytes32 profileHash,
        address by
    ) external {
        emit ICourseCertificate.ProviderVerificationSet(provider, verified, profileHash, by);
    }

    function transfer(address from, address to, uint256 tokenId) external {
        emit Transfer(from, to, tokenId);
    }

    function locked(uint256 tokenId) external {
        emit Locked(tokenId);
    }
}
