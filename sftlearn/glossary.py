"""The course's glossary: each key term in English and Chinese, with a one-line meaning.

Every lesson writes a key term in bold with its Chinese name the first time it appears,
e.g. **token** (词元). This module is where those names live, so all chapters use the same
words. Three ways in:

>>> lookup("BPE").chinese
'字节对编码'
>>> lookup("Perplexity").chapter
4
>>> print(glossary_table(chapter=1).splitlines()[0])
| English | 中文 | Meaning | Chapter |

``lookup`` ignores case, hyphens and extra spaces, and also accepts an abbreviation
("SFT"), another common spelling ("layer normalization") or the Chinese name ("困惑度").

``chapter`` is where the course introduces the term: 00 welcome, 01 tokens, 02 embeddings,
03 attention, 04 probability, information and loss, 05 gradient descent, 06 before
Transformers, 07 the Transformer and GPT, 08 pretraining, 09 supervised fine-tuning,
10 lightweight fine-tuning, 11 applications, 12 training in practice, 13 adversarial
training and what comes next.
"""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass

CHAPTERS: dict[int, str] = {
    0: "welcome",
    1: "tokens",
    2: "embeddings",
    3: "attention",
    4: "probability, information and loss",
    5: "gradient descent",
    6: "before Transformers",
    7: "the Transformer and GPT",
    8: "pretraining",
    9: "supervised fine-tuning",
    10: "lightweight fine-tuning",
    11: "applications",
    12: "training in practice",
    13: "adversarial training and what comes next",
}


@dataclass(frozen=True)
class Term:
    """One glossary entry.

    ``term`` is the English name the course uses, ``chinese`` the standard Chinese name,
    ``definition`` one line of meaning, ``chapter`` where it is introduced and ``aliases``
    other names that ``lookup`` accepts (abbreviations, other spellings).
    """

    term: str
    chinese: str
    definition: str
    chapter: int
    aliases: tuple[str, ...] = ()


def _t(term: str, chinese: str, chapter: int, definition: str, *aliases: str) -> Term:
    return Term(term, chinese, definition, chapter, tuple(aliases))


GLOSSARY: list[Term] = [
    # ----- 00 welcome
    _t("large language model", "大语言模型", 0,
       "A neural network with many parameters, trained on a great deal of text to predict the next token.",
       "LLM"),
    _t("neural network", "神经网络", 0,
       "A function built from layers of weighted sums and simple non-linear functions, whose weights are learned from data.",
       "NN"),
    _t("parameter", "参数", 0,
       "A number inside a model (a weight or a bias) that training adjusts.",),
    _t("tensor", "张量", 0,
       "A multi-dimensional array of numbers, the data type PyTorch computes with.",),
    _t("device", "设备", 0,
       "The hardware a computation runs on: the CPU, or an accelerator such as a GPU.",),
    _t("GPU", "图形处理器", 0,
       "A processor with thousands of simple cores; it runs the matrix products of neural networks many times faster than a CPU.",
       "graphics processing unit"),
    _t("training", "训练", 0,
       "Adjusting a model's parameters so that its outputs on example data get better, as measured by a loss.",),
    _t("inference", "推理", 0,
       "Using a trained model to produce outputs, without changing its parameters.",),
    _t("CPU", "中央处理器", 0,
       "The computer's general-purpose processor; every course model can train on it, only more slowly than on a GPU.",
       "central processing unit"),
    _t("floating-point precision", "浮点精度", 0,
       "How many bits store each number: fp32 (32 bits) is the default; 16-bit formats are faster on GPUs but coarser.",
       "fp32", "float32", "numeric precision"),
    _t("random seed", "随机种子", 0,
       "The number that starts a random number generator; the same seed gives the same 'random' numbers on every run.",
       "seed"),
    # ----- 01 tokens
    _t("token", "词元", 1,
       "One unit of text as a model sees it: a character, a piece of a word, a whole word or a special marker.",),
    _t("tokenizer", "分词器", 1,
       "The program that turns text into a list of token ids and back.",),
    _t("tokenization", "分词", 1,
       "Cutting text into tokens.",
       "tokenisation"),
    _t("token id", "词元 ID", 1,
       "The integer that stands for a token; a model only ever sees these integers.",),
    _t("vocabulary", "词表", 1,
       "The set of all tokens a tokenizer knows; its size is the number of distinct token ids.",
       "vocab", "vocabulary size"),
    _t("corpus", "语料库", 1,
       "A collection of text used to build a tokenizer or to train a model.",),
    _t("character-level tokenization", "字符级分词", 1,
       "Tokenization in which every character is one token: a small vocabulary, but long sequences.",
       "character tokenizer"),
    _t("word-level tokenization", "词级分词", 1,
       "Tokenization in which every word is one token: short sequences, but a huge vocabulary and many unknown words.",
       "word tokenizer"),
    _t("subword", "子词", 1,
       "A piece of a word, such as 'ing' or ' cat', used as a token so that rare words can be spelled from common pieces.",),
    _t("byte-pair encoding", "字节对编码", 1,
       "A tokenizer that starts from single bytes or characters and repeatedly merges the most frequent neighbouring pair into a new token.",
       "BPE", "byte pair encoding"),
    _t("merge rule", "合并规则", 1,
       "One learned BPE step, 'replace the pair (a, b) by the token ab'; encoding applies the merges in the order they were learned.",
       "merge", "BPE merge"),
    _t("pre-tokenization", "预分词", 1,
       "Cutting text into word-like pieces before BPE, so that merges never cross a word boundary.",
       "pretokenization"),
    _t("UTF-8", "UTF-8 编码", 1,
       "The standard way to store text as bytes: one byte for an ASCII character, three for most Chinese characters.",),
    _t("byte fallback", "字节回退", 1,
       "Spelling a character that has no token of its own as its UTF-8 bytes, so no text is ever unknown.",),
    _t("special token", "特殊词元", 1,
       "A reserved token such as <|bos|> or <|end|> that marks structure (start, end, turns, padding) rather than text.",),
    _t("unknown token", "未知词元", 1,
       "The special token <|unk|> that stands in for a character a tokenizer cannot represent; the original character is lost.",
       "<|unk|>", "UNK"),
    _t("sequence length", "序列长度", 1,
       "How many tokens a text becomes; attention's cost grows with its square.",),
    _t("chat template", "对话模板", 1,
       "The fixed format, with special tokens, in which a conversation is written as one token sequence.",),
    # ----- 02 embeddings
    _t("embedding", "嵌入", 2,
       "A learned vector that represents a token; row w of the embedding matrix is the vector of token w.",
       "word embedding", "token embedding"),
    _t("one-hot encoding", "独热编码", 2,
       "A vector of zeros with a single 1 at a token's id; multiplying it by a matrix picks out one row.",
       "one-hot"),
    _t("embedding matrix", "嵌入矩阵", 2,
       "The (vocabulary size × dimension) table whose rows are the token embeddings.",),
    _t("vector", "向量", 2,
       "An ordered list of numbers; a point or a direction in a space with that many dimensions.",),
    _t("dot product", "点积", 2,
       "The sum of the element-wise products of two vectors; large when they point the same way.",
       "inner product"),
    _t("cosine similarity", "余弦相似度", 2,
       "The dot product of two vectors divided by their lengths: the cosine of the angle between them, from -1 to 1.",),
    _t("principal component analysis", "主成分分析", 2,
       "A projection of high-dimensional vectors onto the few directions along which they vary most, e.g. to plot embeddings in 2-D.",
       "PCA"),
    _t("nearest neighbour", "最近邻", 2,
       "The item whose vector is most similar to a given one (for embeddings, usually by cosine similarity).",
       "nearest neighbor", "nearest neighbours"),
    _t("distributional hypothesis", "分布假设", 2,
       "The idea that words used in similar contexts have similar meanings; it is why next-token training gives related words similar embeddings.",),
    _t("covariance matrix", "协方差矩阵", 2,
       "The d × d matrix of centred data, XcᵀXc / (n − 1); v·Cv is the variance of the data along a unit direction v.",
       "covariance"),
    _t("eigenvector", "特征向量", 2,
       "A direction v that a matrix C only stretches, Cv = λv; the eigenvectors of a covariance matrix are the principal directions of PCA.",
       "eigenvectors"),
    _t("eigenvalue", "特征值", 2,
       "The stretch factor λ in Cv = λv; for a covariance matrix, the variance of the data along the eigenvector v.",
       "eigenvalues"),
    _t("singular value decomposition", "奇异值分解", 2,
       "Writing a matrix as U S Vᵀ (orthonormal U and V, non-negative diagonal S); for centred data the rows of Vᵀ are the principal directions.",
       "SVD"),
    # ----- 03 attention
    _t("attention", "注意力机制", 3,
       "A layer in which each position builds its output as a weighted average of value vectors, the weights coming from how well its query matches each key.",
       "attention mechanism"),
    _t("self-attention", "自注意力", 3,
       "Attention in which the queries, keys and values all come from the same sequence.",),
    _t("query", "查询", 3,
       "The vector a position uses to ask what it is looking for; compared with every key.",
       "query vector", "Q"),
    _t("key", "键", 3,
       "The vector a position offers to be matched against queries.",
       "key vector", "K"),
    _t("value", "值", 3,
       "The vector a position contributes to the weighted average when it is attended to.",
       "value vector", "V"),
    _t("attention score", "注意力分数", 3,
       "The dot product of a query with a key (scaled by 1/√d_k), before the softmax.",),
    _t("attention weights", "注意力权重", 3,
       "The softmax of a query's attention scores: non-negative numbers that sum to 1 over the keys.",),
    _t("weighted average", "加权平均", 3,
       "Σ_j w_j x_j with non-negative weights w_j that sum to 1; attention's output is a weighted average of value vectors.",),
    _t("softmax", "softmax 函数（归一化指数函数）", 3,
       "softmax(z)_i = exp(z_i) / Σ_j exp(z_j): turns any real scores into probabilities that sum to 1.",),
    _t("scaled dot-product attention", "缩放点积注意力", 3,
       "Attention with scores q·k/√d_k; the scaling keeps the softmax from saturating when d_k is large.",),
    _t("causal mask", "因果掩码", 3,
       "A mask that stops each position from attending to later positions, so a model cannot peek at the tokens it must predict.",
       "look-ahead mask"),
    _t("multi-head attention", "多头注意力", 3,
       "Several attention operations (heads) side by side, each with its own projections, whose outputs are concatenated.",),
    _t("attention head", "注意力头", 3,
       "One of the parallel attention operations in multi-head attention.",
       "head"),
    _t("cross-attention", "交叉注意力", 3,
       "Attention whose queries come from one sequence and whose keys and values come from another, e.g. a decoder reading an encoder.",),
    _t("context window", "上下文窗口", 3,
       "The largest number of tokens a model can look at at once.",
       "context length", "block size"),
    _t("padding mask", "填充掩码", 3,
       "Marks which positions are padding so that no query attends to them; combined with the causal mask it gives the attention mask.",),
    # ----- 04 probability, information and loss
    _t("language model", "语言模型", 4,
       "A model that gives a probability to every possible next token given the tokens before it.",
       "LM"),
    _t("probability distribution", "概率分布", 4,
       "Non-negative numbers, one per possible outcome, that sum to 1.",),
    _t("conditional probability", "条件概率", 4,
       "P(A | B), the probability of A once B is known; a language model gives P(next token | previous tokens).",),
    _t("loss function", "损失函数", 4,
       "A number that measures how wrong a model's predictions are; training makes it smaller.",
       "loss"),
    _t("logits", "logits（未归一化得分）", 4,
       "A model's raw scores, one per class or token, before the softmax turns them into probabilities.",
       "logit"),
    _t("entropy", "熵", 4,
       "H(p) = −Σ p log p: the average surprise of outcomes drawn from p; zero when one outcome is certain.",),
    _t("cross-entropy", "交叉熵", 4,
       "H(p, q) = −Σ p log q: the average surprise under a model q of outcomes drawn from p; the standard loss for next-token prediction.",
       "cross entropy"),
    _t("KL divergence", "KL 散度（相对熵）", 4,
       "KL(p‖q) = Σ p log(p/q) = H(p, q) − H(p): how much worse q is than p at describing p's outcomes; never negative.",
       "Kullback-Leibler divergence", "relative entropy"),
    _t("log-likelihood", "对数似然", 4,
       "The sum of the log-probabilities a model gives to the observed data; training maximises it.",),
    _t("negative log-likelihood", "负对数似然", 4,
       "Minus the log-likelihood, a loss; averaged per token it equals the cross-entropy loss.",
       "NLL"),
    _t("mean squared error", "均方误差", 4,
       "The average of the squared differences between predictions and targets; the usual loss for numbers.",
       "MSE"),
    _t("perplexity", "困惑度", 4,
       "exp(average cross-entropy per token): the number of equally likely tokens the model is, on average, choosing between.",
       "PPL"),
    _t("surprisal", "信息量（自信息）", 4,
       "−log p: how surprising an outcome of probability p is; 0 for a certain outcome, large for a rare one.",
       "information content", "self-information"),
    _t("maximum likelihood estimation", "最大似然估计", 4,
       "Choosing the parameters that give the observed data the highest probability; for counts, the relative frequencies.",
       "MLE", "maximum likelihood"),
    _t("bigram model", "二元语法模型", 4,
       "A language model that predicts each token from the one before it only: a table of P(next | current).",
       "bigram", "bigram language model"),
    _t("smoothing", "平滑", 4,
       "Moving a little probability to events never seen in training (e.g. adding k to every count), so that none gets probability 0.",
       "add-k smoothing", "Laplace smoothing"),
    _t("unigram model", "一元语法模型", 4,
       "A language model that ignores the context: every token is predicted with its overall frequency, P(x_t | x_<t) = P(x_t).",
       "unigram"),
    # ----- 05 gradient descent
    _t("derivative", "导数", 5,
       "How fast a function's output changes as one input changes.",),
    _t("gradient", "梯度", 5,
       "The vector of a function's partial derivatives; it points in the direction of steepest increase.",),
    _t("finite difference", "有限差分", 5,
       "Estimating a derivative from function values at nearby points, e.g. (f(x + h) − f(x − h)) / 2h.",
       "central difference", "numerical gradient"),
    _t("chain rule", "链式法则", 5,
       "The derivative of a composition is the product of the derivatives of its steps; backpropagation applies it layer by layer.",),
    _t("computational graph", "计算图", 5,
       "The record of operations that produced a value, which automatic differentiation walks backwards.",
       "computation graph"),
    _t("bias correction", "偏差校正", 5,
       "Dividing Adam's running averages by 1 − βᵗ, which undoes their pull towards the zeros they start from.",),
    _t("automatic differentiation", "自动微分", 5,
       "Computing exact gradients of a program by recording its operations and applying the chain rule (PyTorch's autograd).",
       "autograd"),
    _t("backpropagation", "反向传播", 5,
       "Automatic differentiation run from the loss backwards through the layers, giving the gradient for every parameter.",
       "backprop"),
    _t("gradient descent", "梯度下降", 5,
       "Improving parameters by repeatedly stepping against the gradient of the loss.",),
    _t("learning rate", "学习率", 5,
       "The step size of gradient descent: how far the parameters move per update.",
       "lr"),
    _t("stochastic gradient descent", "随机梯度下降", 5,
       "Gradient descent in which each step uses the gradient on a small random batch instead of the whole data set.",
       "SGD"),
    _t("batch", "批次", 5,
       "The examples processed together in one step; the batch size is how many.",
       "mini-batch", "batch size"),
    _t("epoch", "轮次（epoch）", 5,
       "One pass of training over the whole training set.",),
    _t("optimizer", "优化器", 5,
       "The rule that turns gradients into parameter updates (SGD, momentum, Adam, AdamW).",
       "optimiser"),
    _t("momentum", "动量", 5,
       "An optimizer that steps along a running average of past gradients, damping zig-zags and speeding up steady descents.",),
    _t("Adam", "Adam 优化器（自适应矩估计）", 5,
       "An optimizer that keeps running averages of the gradient and of its square, corrects their start-up bias and scales each step per parameter.",),
    _t("AdamW", "AdamW 优化器", 5,
       "Adam with decoupled weight decay: the decay shrinks the weights directly instead of being added to the gradient.",),
    _t("weight decay", "权重衰减", 5,
       "Shrinking the weights a little at every step, which keeps them small and regularises the model.",),
    _t("learning-rate schedule", "学习率调度", 5,
       "A rule that changes the learning rate during training, e.g. warmup followed by cosine decay.",
       "learning rate schedule", "lr schedule"),
    _t("warmup", "预热", 5,
       "Raising the learning rate from near zero over the first steps, so that early, noisy updates do not throw the model off.",
       "learning-rate warmup", "warm-up"),
    _t("cosine decay", "余弦衰减", 5,
       "Lowering the learning rate along a half cosine curve from its peak to a small final value.",
       "cosine schedule"),
    _t("regularisation", "正则化", 5,
       "Anything that discourages a model from fitting its training data too closely, e.g. an L2 penalty or weight decay.",
       "regularization", "regularise", "L2 penalty", "L2 regularisation"),
    # ----- 06 before Transformers
    _t("multilayer perceptron", "多层感知机", 6,
       "Layers of linear maps with non-linear activation functions between them.",
       "MLP", "feed-forward neural network"),
    _t("activation function", "激活函数", 6,
       "The non-linear function applied after a linear layer (ReLU, GELU, tanh, sigmoid); without it stacked layers collapse into one linear map.",),
    _t("ReLU", "ReLU（线性整流函数）", 6,
       "max(0, x): passes positive inputs through and sets negative ones to zero.",
       "rectified linear unit"),
    _t("sigmoid", "sigmoid 函数（S 型函数）", 6,
       "1 / (1 + e^(−x)): squashes any number into (0, 1); used for gates and yes/no probabilities.",
       "logistic function"),
    _t("tanh", "双曲正切函数", 6,
       "The hyperbolic tangent: squashes any number into (−1, 1), centred on 0.",
       "hyperbolic tangent"),
    _t("recurrent neural network", "循环神经网络", 6,
       "A network that reads a sequence one step at a time, carrying a hidden state from each step to the next.",
       "RNN"),
    _t("hidden state", "隐藏状态", 6,
       "The vector an RNN carries from step to step: its memory of what it has read so far.",
       "hidden states"),
    _t("vanishing gradient", "梯度消失", 6,
       "Gradients that shrink towards zero as they flow back through many steps or layers, so early parts barely learn.",
       "vanishing gradients"),
    _t("long short-term memory", "长短期记忆网络", 6,
       "An RNN whose cell state is controlled by forget, input and output gates, so it can keep information over long sequences.",
       "LSTM"),
    _t("gate", "门控", 6,
       "A sigmoid-valued vector that scales another vector element-wise, deciding how much of it passes.",
       "gating"),
    _t("gated recurrent unit", "门控循环单元", 6,
       "A simpler gated RNN than the LSTM, with an update gate and a reset gate and no separate cell state.",
       "GRU"),
    _t("convolutional neural network", "卷积神经网络", 6,
       "A network that slides small learned filters along its input; over text, each filter detects a short pattern of tokens.",
       "CNN"),
    _t("cell state", "细胞状态", 6,
       "The LSTM's second state vector, changed only by the forget gate and the gated candidate, so information can pass many steps.",),
    _t("causal convolution", "因果卷积", 6,
       "A convolution over time padded on the left only, so the output at position t sees inputs up to t and never later ones.",),
    _t("receptive field", "感受野", 6,
       "How many input positions one output can see; for stacked causal convolutions 1 + the sum of (kernel size − 1) × dilation.",),
    _t("long-range dependency", "长距离依赖", 6,
       "A prediction that depends on a token far back in the sequence; recurrent models struggle to learn them, attention reaches them in one step.",
       "long-distance dependency"),
    _t("inductive bias", "归纳偏置", 6,
       "What an architecture assumes before seeing data, e.g. that nearby tokens matter most (MLP windows, convolutions).",),
    _t("GELU", "高斯误差线性单元", 6,
       "The activation x·Φ(x) (Φ the standard normal CDF): a smooth ReLU, used in GPT's feed-forward network.",
       "Gaussian error linear unit"),
    _t("dilation", "膨胀率", 6,
       "The spacing δ between the taps of a convolution filter; stacking dilations 1, 2, 4, ... widens the receptive field exponentially.",
       "dilated convolution"),
    # ----- 07 the Transformer and GPT
    _t("Transformer", "Transformer（变换器）", 7,
       "A network built from blocks of attention and feed-forward layers with residual connections and normalisation; no recurrence.",),
    _t("Transformer block", "Transformer 块", 7,
       "One layer of a Transformer: attention and a feed-forward network, each wrapped in a normalisation and a residual connection.",
       "block"),
    _t("layer normalisation", "层归一化", 7,
       "Rescaling each vector to mean 0 and variance 1 over its features, then applying a learned scale and shift.",
       "layer normalization", "LayerNorm", "layer norm"),
    _t("feed-forward network", "前馈网络", 7,
       "The two-layer MLP applied to each position separately inside a Transformer block.",
       "FFN", "feed forward network"),
    _t("residual connection", "残差连接", 7,
       "Adding a layer's input to its output (x + f(x)), which lets gradients flow through deep stacks.",
       "skip connection", "residual"),
    _t("positional embedding", "位置嵌入", 7,
       "A vector added to each token embedding that tells the model where in the sequence the token is.",
       "position embedding", "positional encoding"),
    _t("encoder", "编码器", 7,
       "A Transformer stack in which every position attends to every other (no causal mask); it produces representations of its input.",),
    _t("decoder", "解码器", 7,
       "A Transformer stack with a causal mask that predicts each next token from the ones before it; GPT is decoder-only.",
       "decoder-only"),
    _t("encoder–decoder", "编码器-解码器", 7,
       "An encoder that reads the input and a decoder that writes the output while attending to the encoder through cross-attention.",
       "encoder-decoder", "sequence-to-sequence", "seq2seq"),
    _t("GPT", "GPT（生成式预训练 Transformer）", 7,
       "Generative Pre-trained Transformer: a decoder-only Transformer trained to predict the next token.",
       "generative pre-trained transformer"),
    _t("masked language model", "掩码语言模型", 7,
       "An encoder trained to fill in tokens replaced by a mask token, using context on both sides (as BERT is).",
       "MLM"),
    _t("parameter count", "参数量", 7,
       "How many numbers a model learns; for a GPT it is dominated by about 12 · layers · width² plus the embeddings.",
       "number of parameters"),
    _t("weight tying", "权重绑定（权重共享）", 7,
       "Using the token-embedding matrix also as the output layer's weights, which saves vocabulary × width parameters.",
       "tied weights", "tied embeddings"),
    _t("FLOPs", "浮点运算次数", 7,
       "Floating-point operations; training a Transformer costs about 6 per parameter per token, plus an attention term.",
       "floating-point operations", "FLOP"),
    _t("residual stream", "残差流", 7,
       "The running vector x that every block of a Transformer reads from and adds its output to (x ← x + f(x)).",),
    _t("pre-LN", "前置层归一化", 7,
       "The block layout x ← x + f(LN(x)): normalise the input of each sub-layer and leave the residual stream untouched (GPT-2 and later).",
       "pre-layer-norm", "pre-norm"),
    _t("post-LN", "后置层归一化", 7,
       "The original Transformer's block layout x ← LN(x + f(x)): normalise after adding the residual.",
       "post-layer-norm", "post-norm"),
    _t("Jacobian", "雅可比矩阵", 7,
       "The matrix of partial derivatives of a function's outputs with respect to its inputs; backpropagation multiplies the layers' Jacobians.",
       "Jacobian matrix"),
    # ----- 08 pretraining
    _t("pretraining", "预训练", 8,
       "The first, long training of a model on plain text, predicting the next token everywhere.",
       "pre-training"),
    _t("next-token prediction", "下一个词元预测", 8,
       "The pretraining task: at every position, predict the token that follows.",),
    _t("training set", "训练集", 8,
       "The examples the model learns from.",
       "training data"),
    _t("validation set", "验证集", 8,
       "Held-out examples used during development to measure progress and choose settings; never trained on.",
       "validation data", "dev set"),
    _t("test set", "测试集", 8,
       "Held-out examples used once at the end to report how well the final model does.",
       "test data"),
    _t("autoregressive generation", "自回归生成", 8,
       "Writing text one token at a time, each new token appended to the input for predicting the next.",),
    _t("greedy decoding", "贪心解码", 8,
       "Always choosing the single most probable next token.",
       "greedy search"),
    _t("sampling", "采样", 8,
       "Choosing the next token at random according to the model's probabilities.",),
    _t("temperature", "温度", 8,
       "Dividing the logits by τ before the softmax: τ < 1 sharpens the distribution, τ > 1 flattens it.",),
    _t("top-k sampling", "top-k 采样", 8,
       "Sampling only among the k most probable tokens.",
       "top-k"),
    _t("top-p sampling", "核采样（top-p 采样）", 8,
       "Sampling only among the most probable tokens whose probabilities add up to at least p.",
       "nucleus sampling", "top-p"),
    _t("KV cache", "键值缓存", 8,
       "Keeping the keys and values of tokens already processed, so generating a new token only computes attention for that token.",
       "key-value cache"),
    _t("overfitting", "过拟合", 8,
       "Fitting the training examples ever better while getting worse on new ones: the model memorises instead of generalising.",),
    _t("gradient clipping", "梯度裁剪", 8,
       "Scaling the gradient down when its norm exceeds a threshold, to prevent destabilising updates.",),
    _t("early stopping", "早停", 8,
       "Stopping training (and keeping the best checkpoint) once the validation loss stops improving.",),
    _t("callback", "回调", 8,
       "A function the training loop calls at set moments (each step, each evaluation), to watch or steer training without changing the loop.",),
    _t("bits per character", "每字符比特数", 8,
       "A language model's loss in bits per character of text, ℓ/ln 2 × tokens/characters: comparable across tokenizers, unlike perplexity.",
       "BPC"),
    _t("model FLOPs utilisation", "模型算力利用率", 8,
       "Achieved training FLOP/s (tokens/s × FLOPs per token) divided by the hardware's peak: the share of the chip's arithmetic a run uses.",
       "MFU", "model FLOPs utilization"),
    # ----- 09 supervised fine-tuning
    _t("fine-tuning", "微调", 9,
       "Training an already-trained model further on a smaller, task-specific data set.",
       "finetuning"),
    _t("supervised fine-tuning", "监督微调", 9,
       "Fine-tuning on examples of prompts with the desired responses, training the model to produce the responses.",
       "SFT"),
    _t("instruction", "指令", 9,
       "A request written in natural language that tells a model what task to do.",),
    _t("instruction tuning", "指令微调", 9,
       "Supervised fine-tuning on many instructions with their answers, so the model learns to follow instructions in general.",),
    _t("prompt", "提示词", 9,
       "The text given to a model to respond to or continue.",),
    _t("loss mask", "损失掩码", 9,
       "Marks which target tokens count in the loss; in SFT only the assistant's reply (and its end marker) does.",
       "prompt-loss masking"),
    _t("padding", "填充", 9,
       "Filling shorter sequences in a batch with a pad token up to a common length.",),
    _t("attention mask", "注意力掩码", 9,
       "Marks which tokens are real (1) and which are padding (0), so attention ignores the padding.",),
    _t("generalisation", "泛化", 9,
       "Doing well on examples not seen in training.",
       "generalization"),
    _t("transfer learning", "迁移学习", 9,
       "Reusing what a model learned on one task or data set (e.g. pretraining) as the starting point for another.",),
    _t("exact match", "精确匹配", 9,
       "Scoring an answer as correct only if it equals the reference exactly (after agreed normalisation).",
       "EM"),
    _t("learning curve", "学习曲线", 9,
       "A model's score plotted against the amount of training data (or training); it shows whether more data would help.",),
    _t("full fine-tuning", "全参数微调", 9,
       "Fine-tuning in which every parameter of the model is updated.",),
    _t("response loss", "回复损失", 9,
       "The mean cross-entropy over the tokens of the assistant's replies only: what SFT lowers and what its validation measures.",),
    _t("induction head", "归纳头", 9,
       "A pair of attention heads that copies from the context: find where the current token occurred before and predict what followed it there.",),
    # ----- 10 lightweight fine-tuning
    _t("parameter-efficient fine-tuning", "参数高效微调", 10,
       "Fine-tuning only a small number of parameters (a few layers, adapters or LoRA) while the rest stay fixed.",
       "PEFT", "lightweight fine-tuning"),
    _t("freezing", "冻结", 10,
       "Excluding parameters from training so that they keep their values (requires_grad = False).",
       "frozen", "freeze"),
    _t("trainable parameters", "可训练参数", 10,
       "The parameters that receive gradients and are updated during training.",),
    _t("optimizer state", "优化器状态", 10,
       "What an optimizer keeps between steps for each trainable parameter; AdamW keeps two numbers (running averages of the gradient and of its square).",),
    _t("adapter", "适配器", 10,
       "A small set of new parameters added to a frozen model and trained for one task.",),
    _t("rank", "秩", 10,
       "The number of independent rows or columns of a matrix; a product B·A of an (m × r) and an (r × n) matrix has rank at most r.",),
    _t("LoRA", "低秩适配", 10,
       "Low-Rank Adaptation: keep a weight W frozen and learn a change B·A of small rank r, so W becomes W + (α/r)·B·A.",
       "low-rank adaptation"),
    _t("weight merging", "权重合并", 10,
       "Adding a trained LoRA update into the frozen weight, so the model runs at its original size and speed.",
       "merging"),
    _t("catastrophic forgetting", "灾难性遗忘", 10,
       "Losing abilities learned earlier (e.g. in pretraining) while being fine-tuned on something else.",),
    _t("activations", "激活值", 10,
       "The intermediate outputs of the layers, kept from the forward pass for the backward pass; with weights, gradients and optimizer state they make up training memory.",
       "activation memory"),
    # ----- 11 applications
    _t("classification head", "分类头", 11,
       "A small layer on top of a model that maps its final representation to one score per class.",),
    _t("text classification", "文本分类", 11,
       "Assigning one label to a whole text, such as positive or negative.",),
    _t("sentiment analysis", "情感分析", 11,
       "Deciding whether a text expresses a positive or a negative opinion.",),
    _t("token classification", "词元分类", 11,
       "Assigning a label to every token of a text, e.g. for named-entity recognition.",),
    _t("named-entity recognition", "命名实体识别", 11,
       "Finding the names of people, places and other entities in a text and labelling their type.",
       "NER", "named entity recognition"),
    _t("BIO tagging", "BIO 标注", 11,
       "Labelling each word as the Beginning of an entity, Inside one, or Outside any.",
       "BIO tags", "BIO tag", "IOB tagging"),
    _t("machine translation", "机器翻译", 11,
       "Translating text from one language into another automatically.",
       "translation"),
    _t("accuracy", "准确率", 11,
       "The fraction of predictions that are correct.",),
    _t("true positive", "真阳性", 11,
       "An example of class c that the classifier calls c: a diagonal entry of the confusion matrix.",
       "TP", "true positives"),
    _t("false positive", "假阳性", 11,
       "An example the classifier calls c that is not of class c: counted in column c of the confusion matrix, off the diagonal.",
       "FP", "false positives"),
    _t("false negative", "假阴性", 11,
       "An example of class c that the classifier misses: counted in row c of the confusion matrix, off the diagonal.",
       "FN", "false negatives"),
    _t("precision", "精确率", 11,
       "Of the items predicted positive, the fraction that really are: TP / (TP + FP).",),
    _t("recall", "召回率", 11,
       "Of the items that really are positive, the fraction predicted positive: TP / (TP + FN).",),
    _t("F1 score", "F1 分数", 11,
       "The harmonic mean of precision and recall, 2PR / (P + R).",
       "F1", "F-score"),
    _t("confusion matrix", "混淆矩阵", 11,
       "A table counting, for each true class, how often each class was predicted.",),
    _t("behavioural test", "行为测试", 11,
       "Probing a model with small hand-made inputs that each change one thing (a word, a negation) to see which rule it has learned.",
       "behavioral test"),
    _t("macro average", "宏平均", 11,
       "A score averaged over classes with equal weight per class, however rare; micro averaging pools the counts first.",
       "macro F1", "macro-averaged F1"),
    _t("micro average", "微平均", 11,
       "A score computed from the counts (TP, FP, FN) pooled over all classes; with one label per example, micro F1 equals accuracy.",
       "micro F1", "micro-averaged F1"),
    _t("entity-level F1", "实体级 F1", 11,
       "F1 over whole entities: a predicted entity counts only if its type, start and end all match a true one.",
       "entity F1"),
    _t("chrF", "字符 n 元 F 分数", 11,
       "A translation score: the F-score (recall weighted double) of matching character n-grams, n = 1 to 6.",
       "chrF score"),
    _t("error analysis", "错误分析", 11,
       "Reading and sorting the examples a model gets wrong to find out why, before deciding what to change.",),
    # ----- 12 training in practice
    _t("hyper-parameter", "超参数", 12,
       "A setting chosen before training rather than learned, such as the learning rate, batch size or LoRA rank.",
       "hyperparameter"),
    _t("grid search", "网格搜索", 12,
       "Trying every combination of a few chosen values of each hyper-parameter; it finds the best point of the grid, not a global optimum.",),
    _t("random search", "随机搜索", 12,
       "Trying hyper-parameter settings drawn at random from chosen ranges.",),
    _t("cross-validation", "交叉验证", 12,
       "Splitting the data into k parts and training k times, each time validating on a different part, to get a steadier estimate.",
       "k-fold cross-validation", "cross validation"),
    _t("data augmentation", "数据增强", 12,
       "Creating extra training examples by transforming existing ones in ways that keep their labels correct.",),
    _t("mixed precision", "混合精度", 12,
       "Training with most computation in 16-bit floating point (bf16 or fp16) and the master weights in 32-bit, for speed and memory.",
       "mixed-precision training", "bf16", "fp16"),
    _t("checkpoint", "检查点", 12,
       "A saved copy of a model's parameters and training state, from which training can resume.",),
    _t("gradient accumulation", "梯度累积", 12,
       "Adding up the gradients of several small batches before one update, to act like a larger batch.",),
    _t("data parallelism", "数据并行", 12,
       "Training copies of a model on several devices, each on different data, and averaging their gradients.",
       "data-parallel training", "DDP"),
    _t("throughput", "吞吐量", 12,
       "How much work is done per second, e.g. tokens per second in training or generation.",),
    _t("data leakage", "数据泄露", 12,
       "Information from the validation or test data reaching training (the examples themselves, their statistics, or choices tuned on them), which makes the estimate too optimistic.",
       "leakage"),
    _t("gradient scaler", "梯度缩放器", 12,
       "Multiplies the loss by a large factor before backward so fp16 gradients do not underflow, and divides it out before the optimizer step.",
       "GradScaler", "loss scaling"),
    # ----- 13 adversarial training and what comes next
    _t("generative adversarial network", "生成对抗网络", 13,
       "Two networks trained against each other: a generator makes samples and a discriminator tries to tell them from real data.",
       "GAN"),
    _t("generator", "生成器", 13,
       "The network of a GAN that turns random noise into samples meant to look real.",),
    _t("discriminator", "判别器", 13,
       "The network of a GAN that scores how likely a sample is to be real rather than generated.",),
    _t("adversarial training", "对抗训练", 13,
       "Training in which one model's objective is to defeat another's, as in a GAN. The same "
       "name also means training on adversarial examples (inputs changed just enough to fool a "
       "model) to make it robust.",),
    _t("latent vector", "潜在向量", 13,
       "The random input vector a generator turns into a sample.",
       "latent code", "noise vector"),
    _t("mode collapse", "模式崩溃", 13,
       "A GAN failure in which the generator produces only a few kinds of sample and ignores the rest of the data's variety.",),
    _t("reinforcement learning from human feedback", "基于人类反馈的强化学习", 13,
       "Fine-tuning a model to produce outputs that a reward model, trained on human preferences, scores highly.",
       "RLHF"),
    _t("alignment", "对齐", 13,
       "Making a model's behaviour match what its users and developers intend: helpful, honest and harmless.",),
    _t("non-saturating loss", "非饱和损失", 13,
       "The generator loss −log D(G(z)), which keeps a strong gradient when the discriminator rejects the generator's samples.",),
    _t("straight-through estimator", "直通估计器", 13,
       "A trick that uses a hard discrete choice in the forward pass but the gradient of a smooth relaxation in the backward pass.",
       "STE"),
    _t("Gumbel-softmax", "Gumbel-softmax 松弛", 13,
       "A differentiable stand-in for sampling a category: the softmax of (logits + Gumbel noise) / temperature.",
       "Gumbel softmax trick"),
    _t("scaling law", "缩放定律", 13,
       "A measured power-law relation between a model's loss and its parameters, data or compute.",
       "scaling laws"),
    _t("mixture of experts", "混合专家模型", 13,
       "A layer of many feed-forward 'experts' of which a router activates only a few per token.",
       "MoE"),
    _t("quantisation", "量化", 13,
       "Storing and computing with weights (and activations) in fewer bits, e.g. 8 or 4, to save memory and time.",
       "quantization"),
    _t("knowledge distillation", "知识蒸馏", 13,
       "Training a small student model to imitate the outputs of a large teacher model.",
       "distillation"),
    _t("direct preference optimisation", "直接偏好优化", 13,
       "Fine-tuning on pairs of preferred and rejected answers directly, without a separate reward model or reinforcement learning loop.",
       "DPO", "direct preference optimization"),
    _t("multimodal model", "多模态模型", 13,
       "A model that takes in (or produces) more than one kind of data, such as text with images or audio.",),
    _t("policy gradient", "策略梯度", 13,
       "Training by raising the log-probability of sampled outputs in proportion to their reward (REINFORCE): a gradient that needs no derivative of the reward.",
       "REINFORCE"),
    _t("reward model", "奖励模型", 13,
       "A model trained on human comparisons of answers to score new answers; RLHF optimises the language model against it.",),
    _t("diffusion model", "扩散模型", 13,
       "A generative model trained to remove noise step by step; sampling starts from pure noise and denoises it.",
       "diffusion models"),
]


# --------------------------------------------------------------------------------- lookup


def _key(text: str) -> str:
    """Normalise a name for lookup: case, hyphens/dashes/underscores and spaces do not matter."""
    text = text.casefold().replace("–", "-").replace("—", "-")
    text = re.sub(r"[-_\s]+", " ", text)
    return text.strip()


def _compact(key: str) -> str:
    """A normalised name without spaces: "crossentropy" still finds "cross-entropy"."""
    return key.replace(" ", "")


def _chinese_names(chinese: str) -> list[str]:
    """The Chinese name, and each part of a name with a gloss in full-width brackets:
    "核采样（top-p 采样）" is also found as "核采样" and as "top-p 采样"."""
    parts = [part.strip() for part in re.split(r"[（）]", chinese)]
    return [chinese] + [part for part in parts if part and part != chinese]


def _index(compact: bool) -> dict[str, Term]:
    index: dict[str, Term] = {}
    for entry in GLOSSARY:
        for name in (entry.term, *_chinese_names(entry.chinese), *entry.aliases):
            key = _key(name)
            index.setdefault(_compact(key) if compact else key, entry)
    return index


_INDEX = _index(compact=False)
_COMPACT_INDEX = _index(compact=True)


class UnknownTermError(KeyError, ValueError):
    """``lookup`` of a term the glossary does not have. It is both a KeyError (a failed
    lookup) and a ValueError (a bad argument), so either ``except`` catches it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # KeyError would otherwise show the message in quotes
        return self.message


def lookup(term: str) -> Term:
    """The glossary entry for ``term`` (English name, abbreviation, other spelling or Chinese).

    Case, hyphens and spaces are ignored: ``lookup("Cross Entropy")`` and
    ``lookup("crossentropy")`` find "cross-entropy". An unknown term raises :class:`UnknownTermError` suggesting close names.
    """
    if not isinstance(term, str):
        raise TypeError(f"lookup expects a term as a str, e.g. lookup('token'), got {type(term).__name__}")
    entry = _INDEX.get(_key(term)) or _COMPACT_INDEX.get(_compact(_key(term)))
    if entry is not None:
        return entry
    close = difflib.get_close_matches(_key(term), list(_INDEX), n=3, cutoff=0.6)
    names = []
    for name in close:  # show each suggestion by its entry's English name, once
        english = _INDEX[name].term
        if english not in names:
            names.append(english)
    suggestion = f" Did you mean {', '.join(repr(n) for n in names)}?" if names else ""
    raise UnknownTermError(
        f"{term!r} is not in the course glossary.{suggestion} "
        "Print glossary_table() to see every term."
    )


def terms(chapter: int | None = None) -> list[Term]:
    """The entries introduced in ``chapter`` (all entries when ``chapter`` is None), in order."""
    if chapter is None:
        return list(GLOSSARY)
    number = _chapter_number(chapter)
    return [entry for entry in GLOSSARY if entry.chapter == number]


def _chapter_number(chapter: object) -> int:
    if isinstance(chapter, str) and chapter.strip().isdigit():
        chapter = int(chapter)
    if isinstance(chapter, bool) or not isinstance(chapter, int) or chapter not in CHAPTERS:
        raise ValueError(
            f"chapter must be a chapter number from 0 to {max(CHAPTERS)} (or None for all), "
            f"got {chapter!r}"
        )
    return chapter


# ---------------------------------------------------------------------------------- tables


def glossary_table(chapter: int | None = None, *, fmt: str = "markdown") -> str:
    """The glossary (or one chapter's terms) as a table string.

    ``fmt="markdown"`` (the default) gives a Markdown table, to show in a notebook with
    ``IPython.display.Markdown(glossary_table())``; ``fmt="html"`` gives an HTML table.
    Columns: English, 中文, meaning, chapter where the term is introduced.
    """
    if fmt not in ("markdown", "html"):
        raise ValueError(f"fmt must be 'markdown' or 'html', got {fmt!r}")
    rows = terms(chapter)
    if fmt == "html":
        return _html_table(rows)
    lines = ["| English | 中文 | Meaning | Chapter |", "| --- | --- | --- | --- |"]
    for entry in rows:
        cells = [f"**{entry.term}**", entry.chinese, entry.definition, f"{entry.chapter:02d}"]
        lines.append("| " + " | ".join(_markdown_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def _markdown_cell(text: str) -> str:
    # A "|" would end the cell, and "<|bos|>" would be read as an HTML tag.
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _html_table(rows: list[Term]) -> str:
    head = "<tr><th>English</th><th>中文</th><th>Meaning</th><th>Chapter</th></tr>"
    body = "".join(
        f"<tr><td><b>{html.escape(e.term)}</b></td><td>{html.escape(e.chinese)}</td>"
        f"<td>{html.escape(e.definition)}</td><td>{e.chapter:02d}</td></tr>"
        for e in rows
    )
    return f"<table>{head}{body}</table>"


__all__ = ["CHAPTERS", "GLOSSARY", "Term", "UnknownTermError", "glossary_table", "lookup", "terms"]
