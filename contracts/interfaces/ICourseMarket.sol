// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ICourseMarket
/// @notice Catalog, prices, purchases, refunds and payouts of Tuition courses, and the single
/// on-chain answer to "may this address open this course?" for both payment rails.
/// @dev Money model:
/// - Every purchase's proceeds (net to the provider, fee to the treasury) stay in escrow until the
///   purchase's refund window has passed, so a withdrawal can never leave a valid refund unpaid.
///   Escrow is kept per (provider, token) in a ring of day buckets keyed by the day the refund
///   windows end; matured buckets move to withdrawable balances lazily (on `release`, `withdraw`,
///   or when the ring slot is reused by a later purchase).
/// - Balances are pull payments per (payee, token): providers, the treasury and refunded payers
///   all take their money out with `withdraw(token)`.
/// - `token == address(0)` is the chain's native coin (ETH, MATIC).
/// - A purchase stores one storage slot per (course, learner): the access source, when it was
///   granted, the refund deadline and a 168-bit digest of (payer, token, amount, fee). A refund
///   supplies those values (the indexer has them from `CoursePurchased`) and the contract checks
///   them against the digest.
interface ICourseMarket {
    /// @notice How a learner obtained access to a course.
    enum AccessSource {
        None,
        Purchase, // paid (or claimed for free) on-chain
        Card, // paid by card off-chain, recorded by an operator
        Grant // granted by an operator without payment (scholarship, support case)
    }

    /// @notice A course as stored on-chain.
    struct Course {
        address provider; // payee; immutable
        uint32 refundWindow; // seconds; applies to purchases made after it was set
        bool listed; // delisted courses cannot be bought; existing access stays
    }

    /// @notice The access record of a (course, learner) pair.
    struct Access {
        AccessSource source;
        uint40 grantedAt; // unix seconds; 0 when there is no access
        uint40 refundDeadline; // unix seconds; 0 when not refundable on-chain
        bytes21 digest; // purchaseDigest(...) for purchases, the leading bytes of `ref` otherwise
    }

    // ---------------------------------------------------------------- events

    /// @notice A provider registered a course.
    event CourseCreated(
        uint256 indexed courseId, address indexed provider, uint32 refundWindow, string title
    );
    /// @notice A course was listed or delisted, or its refund window changed.
    event CourseUpdated(uint256 indexed courseId, bool listed, uint32 refundWindow);
    /// @notice The price of a course in `token` changed; `accepted == false` removes the token.
    event PriceSet(uint256 indexed courseId, address indexed token, uint256 price, bool accepted);
    /// @notice `buyer` paid `amount` of `token` (fee included) for `recipient`'s access.
    /// @dev Also the access grant of an on-chain purchase: no separate AccessGranted is emitted.
    event CoursePurchased(
        uint256 indexed courseId,
        address indexed buyer,
        address indexed recipient,
        address token,
        uint256 amount,
        uint256 fee,
        bytes32 orderRef
    );
    /// @notice An operator granted access off-chain-paid (`Card`) or free (`Grant`).
    event AccessGranted(
        uint256 indexed courseId, address indexed learner, AccessSource source, bytes32 ref
    );
    /// @notice An operator revoked `Card`/`Grant` access (card refund, chargeback, mistake).
    event AccessRevoked(
        uint256 indexed courseId, address indexed learner, AccessSource source, bytes32 ref
    );
    /// @notice A purchase was refunded: `amount` of `token` credited to `payer`, access revoked.
    event Refunded(
        uint256 indexed courseId,
        address indexed learner,
        address indexed payer,
        address token,
        uint256 amount,
        address by
    );
    /// @notice Matured escrow of `provider` in `token` became withdrawable.
    event Released(address indexed provider, address indexed token, uint256 net, uint256 fee);
    /// @notice `payee` withdrew `amount` of `token`.
    event Withdrawn(address indexed payee, address indexed token, uint256 amount);
    /// @notice The platform fee changed (basis points).
    event FeeChanged(uint16 previousBps, uint16 newBps);
    /// @notice Platform fees are credited to `current` from now on.
    event TreasuryChanged(address indexed previous, address indexed current);
    /// @notice `token` was added to (or removed from) the list of accepted ERC-20 tokens.
    event TokenAllowed(address indexed token, bool allowed);
    /// @notice `provider` let (or stopped letting) `delegate` manage its courses.
    event DelegateSet(address indexed provider, address indexed delegate, bool allowed);

    // ---------------------------------------------------------------- errors

    error UnknownCourse(uint256 courseId);
    /// @notice Course ids are below 2**96 (they share a storage key with an address).
    error InvalidCourseId(uint256 courseId);
    error CourseNotListed(uint256 courseId);
    error NotCourseManager(uint256 courseId, address account);
    error TokenNotAllowed(address token);
    error TokenNotAccepted(uint256 courseId, address token);
    error PriceTooHigh(uint256 price, uint256 maxPrice);
    error PriceAboveMax(uint256 price, uint256 maxAmount);
    /// @notice The course's refund window is shorter than the one the buyer was quoted.
    error RefundWindowBelowQuote(uint256 courseId, uint32 refundWindow, uint32 quotedWindow);
    error AlreadyHasAccess(uint256 courseId, address learner);
    error IncorrectPayment(uint256 expected, uint256 sent);
    error TransferShortfall(address token, uint256 expected, uint256 received);
    error RefundWindowTooLong(uint32 refundWindow, uint32 maxRefundWindow);
    error NotRefundable(uint256 courseId, address learner);
    error RefundWindowClosed(uint256 courseId, address learner, uint256 deadline);
    error PurchaseMismatch(uint256 courseId, address learner);
    error NotOperatorGranted(uint256 courseId, address learner);
    error FeeTooHigh(uint16 bps, uint16 maxBps);
    error NothingToWithdraw(address payee, address token);
    error NativeTransferFailed(address to, uint256 amount);
    error ZeroAddress();
    error EmptyTitle();
    /// @notice A course title is not printable UTF-8 (see {Text-isPrintable}): invalid UTF-8, a
    /// control character, or a character XML forbids, starting at byte `offset`.
    error InvalidTitle(uint256 offset);

    // ---------------------------------------------------------------- catalog

    /// @notice Register a course paid out to the caller.
    /// @param title Shown in certificates; 1..100 bytes of printable UTF-8.
    /// @param refundWindow Seconds after a purchase during which it can be refunded (≤ 30 days).
    /// @return courseId Sequential id, starting at 1.
    function createCourse(string calldata title, uint32 refundWindow)
        external
        returns (uint256 courseId);

    /// @notice Set the price of `courseId` in `token` (`address(0)`: native coin).
    /// @dev Caller must be the provider or one of its delegates. Price 0 makes the course free in
    /// that token. ERC-20 tokens must be on the allowlist. Price must fit in uint96.
    function setPrice(uint256 courseId, address token, uint256 price) external;

    /// @notice Stop accepting `token` for `courseId`.
    function removePrice(uint256 courseId, address token) external;

    /// @notice List or delist a course.
    function setListed(uint256 courseId, bool listed) external;

    /// @notice Change the refund window of future purchases of `courseId`.
    function setRefundWindow(uint256 courseId, uint32 refundWindow) external;

    /// @notice Let `delegate` manage all of the caller's courses (prices, listing, refunds).
    function setDelegate(address delegate, bool allowed) external;

    // ---------------------------------------------------------------- purchases

    /// @notice Buy `courseId` for `recipient` (the caller when `address(0)`).
    /// @dev Native coin: send at least the price; the excess is returned to the caller in the same
    /// transaction. ERC-20: approve the exact price first; fee-on-transfer tokens are rejected.
    /// @param maxAmount The most the caller agrees to pay; protects against price changes.
    /// @param orderRef The backend's order reference, or zero.
    /// @param quotedWindow The refund window (seconds) the buyer was quoted; protects against a
    /// window cut ordered before the purchase (RefundWindowBelowQuote). Zero accepts any.
    function purchase(
        uint256 courseId,
        address token,
        uint256 maxAmount,
        address recipient,
        bytes32 orderRef,
        uint32 quotedWindow
    ) external payable;

    /// @notice Buy with an ERC-20 that supports EIP-2612, in one transaction.
    /// @dev The permit is for `maxAmount` to this contract. A permit already used (for instance
    /// front-run) is tolerated when the allowance is enough.
    function purchaseWithPermit(
        uint256 courseId,
        address token,
        uint256 maxAmount,
        address recipient,
        bytes32 orderRef,
        uint32 quotedWindow,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;

    /// @notice Refund a purchase within its refund window: `amount` is credited to `payer`
    /// (withdrawable with `withdraw`) and the learner loses access.
    /// @dev Caller: the course's provider, one of its delegates, or an OPERATOR. The payer, token,
    /// amount and fee are those of the `CoursePurchased` event, checked against the stored digest.
    function refund(
        uint256 courseId,
        address learner,
        address payer,
        address token,
        uint256 amount,
        uint256 fee
    ) external;

    /// @notice Record access paid off-chain (`Card`) or given for free (`Grant`). OPERATOR only.
    function grantAccess(uint256 courseId, address learner, AccessSource source, bytes32 ref)
        external;

    /// @notice Revoke access recorded by `grantAccess` (card refund, chargeback). OPERATOR only.
    function revokeAccess(uint256 courseId, address learner, bytes32 ref) external;

    // ---------------------------------------------------------------- money

    /// @notice Move the matured escrow of `provider` in `token` to withdrawable balances.
    /// Anyone may call it; fees go to the treasury whoever calls it.
    function release(address provider, address token) external;

    /// @notice Pay out the caller's whole withdrawable balance in `token` (releasing matured
    /// escrow first).
    function withdraw(address token) external returns (uint256 amount);

    // ---------------------------------------------------------------- admin

    /// @notice Set the platform fee in basis points (≤ MAX_FEE_BPS). Admin only.
    function setFee(uint16 bps) external;

    /// @notice Set the address that collects platform fees: every fee not withdrawn yet, released
    /// or still in escrow, goes to the treasury current when it is withdrawn. Admin only.
    function setTreasury(address treasury) external;

    /// @notice Add or remove an ERC-20 from the accepted list. Admin only.
    function setTokenAllowed(address token, bool allowed) external;

    /// @notice Stop purchases and grants (refunds and withdrawals keep working). Guardian only.
    function pause() external;

    /// @notice Resume purchases and grants. Guardian only.
    function unpause() external;

    // ---------------------------------------------------------------- views

    /// @notice Whether `learner` may open `courseId`, from any rail.
    function hasAccess(uint256 courseId, address learner) external view returns (bool);

    /// @notice The access record of (`courseId`, `learner`).
    function accessOf(uint256 courseId, address learner) external view returns (Access memory);

    /// @notice The digest a refund is checked against.
    function purchaseDigest(address payer, address token, uint256 amount, uint256 fee)
        external
        pure
        returns (bytes21);

    /// @notice The course record; reverts with UnknownCourse for unknown ids.
    function course(uint256 courseId) external view returns (Course memory);

    /// @notice The provider (payee) of a course; reverts with UnknownCourse for unknown ids.
    function courseProvider(uint256 courseId) external view returns (address);

    /// @notice The course title; reverts with UnknownCourse for unknown ids.
    function courseTitle(uint256 courseId) external view returns (string memory);

    /// @notice The number of courses registered so far (ids are 1..courseCount).
    function courseCount() external view returns (uint256);

    /// @notice The price of `courseId` in `token`, and whether that token is accepted.
    function priceOf(uint256 courseId, address token)
        external
        view
        returns (uint256 price, bool accepted);

    /// @notice Whether `delegate` may manage `provider`'s courses.
    function isDelegate(address provider, address delegate) external view returns (bool);

    /// @notice Whether `token` is on the ERC-20 allowlist.
    function isTokenAllowed(address token) external view returns (bool);

    /// @notice What `payee` could withdraw in `token` now (including matured escrow).
    function withdrawableOf(address payee, address token) external view returns (uint256);

    /// @notice What `provider` has in `token` still inside refund windows (net and fee).
    function escrowOf(address provider, address token)
        external
        view
        returns (uint256 net, uint256 fee);

    /// @notice The platform fee in basis points.
    function feeBps() external view returns (uint16);

    /// @notice The address platform fees are credited to.
    function treasury() external view returns (address);
}
