"""The instructor's solution in the homework's original TensorFlow 1 style (graph mode).

Same API as the 2018-2019 TF1 notebooks: networks are functions that build their layers
inside a variable scope on the tensor they are given. The grader uses these parts when it
attributes a TF1 submission's failed training (one reference part swapped in at a time),
and the TF1 test fixtures are written from them. Runs under ``tensorflow.compat.v1`` with
v2 behaviour disabled and legacy Keras (``tf_keras``) providing ``tf.layers``.
"""

import tensorflow.compat.v1 as tf

NOISE_DIM = 96


def leaky_relu(x, alpha=0.01):
    """Leaky ReLU of a tensor."""
    return tf.maximum(x, alpha * x)


def sample_noise(batch_size, dim):
    """A tensor of uniform noise on [-1, 1], shape [batch_size, dim], fresh on every run."""
    return tf.random_uniform([batch_size, dim], minval=-1, maxval=1)


def discriminator(x):
    """MLP discriminator on [N, 784] images; returns [N, 1] logits."""
    with tf.variable_scope("discriminator"):
        hidden = leaky_relu(tf.layers.dense(x, 256))
        hidden = leaky_relu(tf.layers.dense(hidden, 256))
        return tf.layers.dense(hidden, 1)


def generator(z):
    """MLP generator on [N, noise_dim] noise; returns [N, 784] images in [-1, 1]."""
    with tf.variable_scope("generator"):
        hidden = tf.layers.dense(z, 1024, activation=tf.nn.relu)
        hidden = tf.layers.dense(hidden, 1024, activation=tf.nn.relu)
        return tf.layers.dense(hidden, 784, activation=tf.tanh)


def gan_loss(logits_real, logits_fake):
    """(D_loss, G_loss) of the vanilla GAN from discriminator logits."""
    bce = tf.nn.sigmoid_cross_entropy_with_logits
    d_loss = tf.reduce_mean(bce(labels=tf.ones_like(logits_real), logits=logits_real)) \
        + tf.reduce_mean(bce(labels=tf.zeros_like(logits_fake), logits=logits_fake))
    g_loss = tf.reduce_mean(bce(labels=tf.ones_like(logits_fake), logits=logits_fake))
    return d_loss, g_loss


def get_solvers(learning_rate=1e-3, beta1=0.5):
    """Two Adam optimizers (D_solver, G_solver)."""
    d_solver = tf.train.AdamOptimizer(learning_rate=learning_rate, beta1=beta1)
    g_solver = tf.train.AdamOptimizer(learning_rate=learning_rate, beta1=beta1)
    return d_solver, g_solver


def lsgan_loss(scores_real, scores_fake):
    """(D_loss, G_loss) of the least-squares GAN with the 0-1 coding."""
    d_loss = 0.5 * tf.reduce_mean(tf.square(scores_real - 1)) \
        + 0.5 * tf.reduce_mean(tf.square(scores_fake))
    g_loss = 0.5 * tf.reduce_mean(tf.square(scores_fake - 1))
    return d_loss, g_loss


def dc_discriminator(x):
    """Convolutional discriminator on [N, 784] images; returns [N, 1] logits."""
    with tf.variable_scope("discriminator"):
        images = tf.reshape(x, [-1, 28, 28, 1])
        hidden = leaky_relu(tf.layers.conv2d(images, 32, 5, padding="valid"))
        hidden = tf.layers.max_pooling2d(hidden, 2, 2)
        hidden = leaky_relu(tf.layers.conv2d(hidden, 64, 5, padding="valid"))
        hidden = tf.layers.max_pooling2d(hidden, 2, 2)
        hidden = leaky_relu(tf.layers.dense(tf.layers.flatten(hidden), 1024))
        return tf.layers.dense(hidden, 1)


def dc_generator(z):
    """Convolutional generator on [N, noise_dim] noise; returns [N, 784] images in [-1, 1]."""
    with tf.variable_scope("generator"):
        hidden = tf.layers.dense(z, 1024, activation=tf.nn.relu)
        hidden = tf.layers.batch_normalization(hidden, training=True)
        hidden = tf.layers.dense(hidden, 7 * 7 * 128, activation=tf.nn.relu)
        hidden = tf.layers.batch_normalization(hidden, training=True)
        hidden = tf.reshape(hidden, [-1, 7, 7, 128])
        hidden = tf.layers.conv2d_transpose(hidden, 64, 4, strides=2, padding="same",
                                            activation=tf.nn.relu)
        hidden = tf.layers.batch_normalization(hidden, training=True)
        images = tf.layers.conv2d_transpose(hidden, 1, 4, strides=2, padding="same",
                                            activation=tf.tanh)
        return tf.reshape(images, [-1, 784])
