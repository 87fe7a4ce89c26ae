package com.s3bguploader.test

import android.os.ParcelFileDescriptor
import com.sun.jna.Library
import com.sun.jna.Native
import org.robolectric.annotation.Implementation
import org.robolectric.annotation.Implements
import org.robolectric.annotation.RealObject
import org.robolectric.shadow.api.Shadow
import org.robolectric.util.ReflectionHelpers
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
 * `detachFd()` and `dup()` to framework code that cannot reach it (its own
 * `dup()` opens the file's path again). This shadow gives both Android's
 * meaning: `dup()` makes a descriptor of the same open file (dup(2)) that the
 * new ParcelFileDescriptor owns; `detachFd()` hands the caller a descriptor it
 * then owns and closes the ParcelFileDescriptor, except on a wrapper (made
 * with the `ParcelFileDescriptor(ParcelFileDescriptor)` constructor, as
 * ContentResolver's provider-holding one is), where, as on Android, the
 * wrapped descriptor is detached and the wrapper itself stays open; closing
 * a wrapper closes the wrapped one.
 */
@Implements(ParcelFileDescriptor::class)
class DetachableParcelFileDescriptor : ShadowParcelFileDescriptor() {
    @RealObject private lateinit var real: ParcelFileDescriptor

    /** The descriptor a `dup()` made, owned by this object (-1: none). */
    private var dupFd = -1

    @Implementation
    override fun getFd(): Int = if (dupFd >= 0) dupFd else super.getFd()

    @Implementation
    override fun dup(): ParcelFileDescriptor {
        val fd = LibC.INSTANCE.dup(getFd())
        check(fd >= 0) { "dup failed" }
        // A carrier for the descriptor: its own file is never read.
        val copy = ParcelFileDescriptor.open(java.io.File("/dev/null"), ParcelFileDescriptor.MODE_READ_ONLY)
        (Shadow.extract<Any>(copy) as DetachableParcelFileDescriptor).dupFd = fd
        return copy
    }

    @Implementation
    fun detachFd(): Int {
        if (dupFd >= 0) {
            val fd = dupFd
            dupFd = -1
            super.close()
            return fd
        }
        val wrapped = ReflectionHelpers.getField<ParcelFileDescriptor?>(real, "mWrapped")
        if (wrapped != null) return wrapped.detachFd()
        val fd = LibC.INSTANCE.dup(getFd())
        check(fd >= 0) { "dup failed" }
        close()
        return fd
    }

    @Implementation
    override fun close() {
        if (dupFd >= 0) {
            LibC.INSTANCE.close(dupFd)
            dupFd = -1
        }
        // As on Android, closing a wrapper closes the wrapped descriptor.
        ReflectionHelpers.getField<ParcelFileDescriptor?>(real, "mWrapped")?.close()
        super.close()
    }
}
