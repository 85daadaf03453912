"""Reports: what the store holds (`mailflow status`) and what the e-mails did and brought
back (`mailflow report`), as data the console prints or a page pygal draws."""
