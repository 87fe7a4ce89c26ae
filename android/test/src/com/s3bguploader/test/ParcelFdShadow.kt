package com.s3bguploader.test

import android.os.ParcelFileDescriptor
import com.sun.jna.Library
import com.sun.jna.Native
import org.robolectric.annotation.Implementation
import org.robolectric.annotation.Implements
import org.robolectric.shadows.ShadowParcelFileDescriptor

/** The C library calls the tests need (descriptors, pipes). */
interface LibC : Library {
    fun dup(fd: Int): Int
    fun pipe(fds: IntArray): Int
    fun close(fd: Int): Int

    companion object {
        val INSTANCE: LibC by lazy { Native.load("c", LibC::class.java) }
    }
}

/**
 * Robolectric's ParcelFileDescriptor keeps a JVM RandomAccessFile and leaves
 * `detachFd()` to framework code that cannot reach it. This shadow gives
 * `detachFd()` Android's meaning: the caller gets a descriptor of the same
 * open file and owns it; the ParcelFileDescriptor is closed.
 */
@Implements(ParcelFileDescriptor::class)
class DetachableParcelFileDescriptor : ShadowParcelFileDescriptor() {
    @Implementation
    fun detachFd(): Int {
        val fd = LibC.INSTANCE.dup(getFd())
        check(fd >= 0) { "dup failed" }
        close()
        return fd
    }
}
