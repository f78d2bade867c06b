"""Weight clustering (weight sharing) with tensorflow-model-optimization: each kernel keeps n distinct values."""
from __future__ import annotations

from edgeml.errors import TrainingError
from edgeml.optimize.keras_model import require_tf_keras
from edgeml.train import keras_env


# layers without kernels to share (statistics, additive tables) stay as they are
UNCLUSTERED_LAYERS = ("Normalization", "Rescaling", "PositionEmbedding")


def cluster_model(model, n_clusters: int, preserve_sparsity: bool = False):
    """A copy of `model` whose kernels are tied to `n_clusters` centroids (k-means++ initialised).

    preserve_sparsity: sparsity-preserving clustering (after pruning): zero weights stay zero and out of the
    centroids.  Fine-tune the result (compile again first) so the centroids adapt, then `strip_clustering`.  A
    Conv2D with fewer weights than clusters is left unclustered by tfmot.
    """
    _, keras = keras_env()
    import tensorflow_model_optimization as tfmot
    require_tf_keras(model, "cluster_model")
    if int(n_clusters) != n_clusters or n_clusters < 2:
        raise TrainingError(f"Clustering needs an integer number of clusters >= 2, got {n_clusters}.")
    clustering = tfmot.clustering.keras
    if not isinstance(model, keras.Sequential) and not getattr(model, "_is_graph_network", False):
        raise TrainingError(f"tfmot clusters Sequential and functional models, not a subclassed "
                            f"{type(model).__name__}.")

    def wrap(layer):
        if isinstance(layer, keras.layers.InputLayer) or not layer.weights \
                or type(layer).__name__ in UNCLUSTERED_LAYERS:
            return layer
        return clustering.cluster_weights(layer, number_of_clusters=int(n_clusters),
                                          cluster_centroids_init=clustering.CentroidInitialization.KMEANS_PLUS_PLUS,
                                          preserve_sparsity=bool(preserve_sparsity))
    try:
        return keras.models.clone_model(model, clone_function=wrap)
    except (ValueError, TypeError) as exc:
        raise TrainingError(f"tfmot could not cluster the model: {str(exc).splitlines()[0]}") from exc


def strip_clustering(model):
    """The model without clustering wrappers: plain layers whose kernels hold only the centroid values."""
    keras_env()
    import tensorflow_model_optimization as tfmot
    require_tf_keras(model, "strip_clustering")
    return tfmot.clustering.keras.strip_clustering(model)
