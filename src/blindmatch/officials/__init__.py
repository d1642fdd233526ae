"""The officials' side: how a person's approval key is found and used to sign.

An official signs prepared requests (``blindmatch official approve``) either with a
passphrase-encrypted PEM file (:mod:`blindmatch.policy.keys`) or with a key that never
leaves a PKCS#11 token (:mod:`blindmatch.officials.token`). The official's own
configuration file (:mod:`blindmatch.officials.config`) says which. No daemon imports
this package: no official's private key is in any daemon.
"""
