"""Training recipes built on the flip library: each module is a `python -m finetune.<recipe>` program."""
