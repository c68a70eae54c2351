// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";

/// @notice Some other ERC-721, standing for the `.eth` registrar's token of `beatstream.eth`: anyone may mint.
contract ForeignNft is ERC721 {
    constructor() ERC721("Foreign", "FRGN") {}

    function mint(address to, uint256 tokenId) external {
        _mint(to, tokenId);
    }
}
