"""Board and technical reports rendered from stored findings, and their e-mail.

Reports never change findings. The renderers arrive with the reporting work; today
`warpagent findings` is the way to read the store.
"""
