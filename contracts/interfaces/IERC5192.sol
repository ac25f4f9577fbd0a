// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IERC5192
/// @notice Minimal soulbound NFTs (ERC-5192). Interface id: 0xb45a3c0e.
interface IERC5192 {
    /// @notice `tokenId` became non-transferable.
    /// @param tokenId The locked token.
    event Locked(uint256 tokenId);

    /// @notice `tokenId` became transferable.
    /// @param tokenId The unlocked token.
    event Unlocked(uint256 tokenId);

    /// @notice Whether `tokenId` is locked (non-transferable).
    /// @dev Reverts for tokens that do not exist.
    /// @param tokenId The token to query.
    /// @return True if the token cannot be transferred.
    function locked(uint256 tokenId) external view returns (bool);
}
