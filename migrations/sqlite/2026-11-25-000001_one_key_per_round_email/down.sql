DROP TABLE round_link_uses;
