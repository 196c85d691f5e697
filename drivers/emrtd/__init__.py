"""eMRTD chip access (ICAO 9303 Parts 10-11): PACE and BAC under an access policy, 3DES and AES secure
messaging, Active Authentication, file reading over PC/SC.

Entry points: `pcsc.PcscReader.from_config(cfg.devices.chip_reader)` -> `wait_for_card()` ->
`connect()` (a transport), then `reader.read_document(transport, bac.BacKey.from_mrz(mrz),
deadline_s=cfg.timeouts.chip_read_s)` -> `ReadResult(files, timings_s, access_control, apdus)`;
`pcsc.CardMonitor` for insertion/removal. Errors are `apdu.ChipError` subclasses. See docs/passport.md.
"""
