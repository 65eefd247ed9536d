"""The special tokens and their ids: the one home that the tokenizer and the models share.

Every tokenizer trainer gives the special tokens the first ids, in this order, so a model built
for one tokenizer finds padding, begin, end and unknown at the same ids."""

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SPECIALS = (PAD, BOS, EOS, UNK)
