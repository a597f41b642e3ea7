# %% [markdown]
# # Lab 06 · Embeddings: build semantic search yourself
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/local-llm-lab/local-llm-lab/blob/main/labs/06_embeddings_lab.ipynb)
#
# Six exercises on lesson 06. Replace each `raise NotImplementedError` with your code, run the cell, and
# read the check's verdict: ✅ means right, ❌ comes with a hint, ⏳ means not done yet.
#
# You will write the cosine similarity, a vector search, the mean pooling that turns a transformer's hidden
# states into a sentence embedding, a PCA projection to 2-D, nearest neighbours over real MiniLM
# embeddings, and then build a topic classifier that must reach a target on sentences it has never seen.
# Only numpy is needed.
#
# **Prerequisites:** lesson 06.
#
# **Run time:** 11 s on a 2-core CPU (Intel(R) Xeon(R) Processor), measured by `course run` on 2026-12-02; a slower machine takes longer.

# %%
# Colab only: install the course (~5 min the first time). Does nothing on your own machine.
import sys
if "google.colab" in sys.modules:
    # !git clone -q --depth 1 https://github.com/local-llm-lab/local-llm-lab /content/local-llm-lab
    # !bash /content/local-llm-lab/tools/install.sh --system

# %% tags=["parameters"]
BACKEND = "auto"  # not used by this lab: everything here is embeddings
MODEL = None
SEED = 0

# %%
from collections import Counter

import numpy as np

from course_utils import setup_notebook
from course_utils.checks.embeddings import (
    check_cosine, check_mean_pool, check_nearest_neighbours, check_pca, check_search, check_topic_classifier,
)
from course_utils.embeddings import Embedder, course_sentences

cfg = setup_notebook(seed=SEED)
embedder = Embedder()  # the bundled all-MiniLM-L6-v2, used by exercises 5 and 6

# %% [markdown]
# ## Exercise 1: cosine similarity
#
# Write `cosine_similarity(a, b)` for two 1-D numpy arrays: the dot product divided by the product of the two
# lengths (`np.linalg.norm`). `cosine_similarity(np.array([1, 0]), np.array([1, 1]))` is about 0.707. The check also
# tries integer vectors and opposite vectors (cosine -1), and your function must leave `a` and `b` unchanged.

# %%
def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    # TODO: a @ b divided by the product of the lengths of a and b
    raise NotImplementedError


check_cosine(cosine_similarity)

# %% [markdown]
# ## Exercise 2: search
#
# Write `search(query, matrix, k)`: the indices of the `k` rows of `matrix` most similar (by cosine) to
# `query`, most similar first. The rows do **not** all have length 1, so normalise them (and the query) before
# taking dot products, and leave `matrix` unchanged. `np.argsort(-scores)` sorts from highest to lowest. The check
# tries several `k`, from 1 to every row.

# %%
def search(query: np.ndarray, matrix: np.ndarray, k: int) -> list[int]:
    # TODO: normalise the rows and the query, score every row with one matrix product, return the top k indices
    raise NotImplementedError


check_search(search)

# %% [markdown]
# ## Exercise 3: mean pooling
#
# A sentence-transformer averages its hidden states over the **real** tokens of each text. Write
# `mean_pool(hidden, mask)` where `hidden` has shape (texts, tokens, dim) and `mask` has shape (texts, tokens)
# with 1 for a real token and 0 for padding. Return shape (texts, dim). Padding must not count: a text with 2
# real tokens is the average of those 2 vectors.

# %%
def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    # TODO: zero the padded positions (multiply by mask[..., None]), sum over tokens, divide by the number of real tokens
    raise NotImplementedError


check_mean_pool(mean_pool)

# %% [markdown]
# ## Exercise 4: PCA to two dimensions
#
# Write `pca_2d(X)`: centre `X` (subtract each column's mean), take the singular value decomposition
# `np.linalg.svd(Xc, full_matrices=False)` which returns `U, S, Vt`, and project the centred data onto the first
# two rows of `Vt`. Return shape (n, 2). (Each axis may come out pointing either way; the check allows that.)

# %%
def pca_2d(X: np.ndarray) -> np.ndarray:
    # TODO: centre, SVD, project onto the two first principal directions
    raise NotImplementedError


check_pca(pca_2d)

# %% [markdown]
# ## Exercise 5: nearest neighbours
#
# Write `nearest_neighbours(vectors, i, k)`: the indices of the `k` rows most similar to row `i`, best first,
# **leaving out `i` itself**. The rows are unit vectors (MiniLM embeddings of the course's 48 sentences), so the
# dot product is the cosine. Hint: set the score of row `i` to `-np.inf` before sorting (in a new array of scores,
# not in `vectors`). The check tries several rows (the first and the last among them) and several `k`.

# %%
def nearest_neighbours(vectors: np.ndarray, i: int, k: int) -> list[int]:
    # TODO: score every row against row i, exclude i, return the k best indices
    raise NotImplementedError


check_nearest_neighbours(nearest_neighbours, embedder)

# %% [markdown]
# ## Exercise 6: a topic classifier that works on sentences it has never seen (build and measure)
#
# Build `classify_topics(train_texts, train_topics, texts)`: given labelled training sentences (lesson 06's 48
# sentences, 8 on each of 6 topics) return one topic for each text in `texts`. Any design is allowed: a vote of the
# nearest training sentences (your `nearest_neighbours` idea), the nearest topic centre, ... . Leave the lists you are
# given unchanged.
#
# **Measured:** the check trains your classifier on the 48 sentences and asks it for the topics of 30 held-out
# sentences written for the check, which this lab never shows you (they share few words with the training
# sentences). **Target:** at least 80% right. The check prints your accuracy beside the target and that of its
# reference, a 3-nearest-neighbour vote over MiniLM embeddings.

# %%
def classify_topics(train_texts: list[str], train_topics: list[str], texts: list[str]) -> list[str]:
    # TODO: embed both lists with `embedder`, compare every text with the training sentences, let the most
    # similar ones decide its topic
    raise NotImplementedError


check_topic_classifier(classify_topics, embedder)

# %% [markdown]
# ## Going further
#
# - Use your `search` with `embedder.embed(...)` on `course_sentences()` and queries of your own. Which of your
#   queries fail, and why?
# - Plot `pca_2d` of the sentence embeddings, coloured by `topic`. Do the same with word-count vectors (lesson 06,
#   section 2): do the topics still separate?
