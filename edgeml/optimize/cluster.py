"""Weight clustering (weight sharing) with tensorflow-model-optimization: each kernel keeps n distinct values."""
from __future__ import annotations

from edgeml.errors import TrainingError
from edgeml.optimize.keras_model import require_tf_keras
from edgeml.train import keras_env


def cluster_model(model, n_clusters: int):
    """A copy of `model` whose kernels are tied to `n_clusters` centroids (k-means++ initialised).

    Fine-tune it (compile again first) so the centroids adapt, then `strip_clustering`.  A Conv2D with fewer
    weights than clusters is left unclustered by tfmot.
    """
    keras_env()
    import tensorflow_model_optimization as tfmot
    require_tf_keras(model, "cluster_model")
    if int(n_clusters) != n_clusters or n_clusters < 2:
        raise TrainingError(f"Clustering needs an integer number of clusters >= 2, got {n_clusters}.")
    clustering = tfmot.clustering.keras
    try:
        clustered = clustering.cluster_weights(
            model, number_of_clusters=int(n_clusters),
            cluster_centroids_init=clustering.CentroidInitialization.KMEANS_PLUS_PLUS)
    except ValueError as exc:
        raise TrainingError(f"tfmot could not cluster the model: {str(exc).splitlines()[0]}") from exc
    if clustered is None:  # tfmot returns None, without an error, for objects it does not recognise
        raise TrainingError(f"tfmot's cluster_weights returned nothing for {type(model).__name__}; it needs a "
                            f"tf_keras Sequential or functional model.")
    return clustered


def strip_clustering(model):
    """The model without clustering wrappers: plain layers whose kernels hold only the centroid values."""
    keras_env()
    import tensorflow_model_optimization as tfmot
    require_tf_keras(model, "strip_clustering")
    return tfmot.clustering.keras.strip_clustering(model)
